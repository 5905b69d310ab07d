#!/usr/bin/env bash
# Make sure PostgreSQL, Redis and RabbitMQ answer on 127.0.0.1 (make test), or only the ones named
# (`ensure_services.sh redis rabbitmq`: what `make run` needs, chosen by tradingapp.preflight --start).
#   answers            -> nothing to do (the usual case: well under a second for all three)
#   installed but down -> start it
#   not installed      -> apt-get install it (sudo when not root), then start it
# then wait until each answers, or stop with a message naming the one that did not.
set -euo pipefail

WAIT_SECONDS="${SERVICES_WAIT_SECONDS:-120}"
HOST=127.0.0.1
PG_PORT=5432
REDIS_PORT="${REDIS_PORT:-6379}"  # the app's setting: a Redis down on another local port is started there
RABBITMQ_PORT=5672
# Only the Redis this script starts uses these flags; an already running one is left as it is.
REDIS_START=(redis-server --daemonize yes --bind 127.0.0.1 -::1 --port "$REDIS_PORT" --save "" --appendonly no
             --dir /var/lib/redis --logfile /var/log/redis/ci.log)

SCRIPT_NAME=services
# shellcheck source=scripts/lib.sh
source "${BASH_SOURCE[0]%/*}/lib.sh"  # no dirname: this must run on a bare PATH

tcp_open() { timeout 1 bash -c "exec 3<>/dev/tcp/$1/$2" 2>/dev/null; }

postgres_up() {
    if command -v pg_isready >/dev/null 2>&1; then
        pg_isready -q -h "$HOST" -p "$PG_PORT" -t 1
    else
        tcp_open "$HOST" "$PG_PORT"
    fi
}

redis_up() {
    if command -v redis-cli >/dev/null 2>&1; then
        [ "$(timeout 2 redis-cli -h "$HOST" -p "$REDIS_PORT" ping 2>/dev/null)" = "PONG" ]
    else
        tcp_open "$HOST" "$REDIS_PORT"
    fi
}

rabbitmq_up() { tcp_open "$HOST" "$RABBITMQ_PORT"; }

postgres_installed() { command -v pg_ctlcluster >/dev/null 2>&1 && compgen -G "/etc/postgresql/*/main" >/dev/null; }
redis_installed() { command -v redis-server >/dev/null 2>&1; }
rabbitmq_installed() { command -v rabbitmq-server >/dev/null 2>&1; }

postgres_start() {
    local version
    # shellcheck disable=SC2012  # cluster versions are plain numbers
    version="$(ls /etc/postgresql | sort -V | tail -n 1)"
    # "already running" or "starting" is fine: the wait below decides.
    as_root pg_ctlcluster --skip-systemctl-redirect "$version" main start || true
}

redis_start() {
    as_root mkdir -p /var/lib/redis /var/log/redis
    as_root "${REDIS_START[@]}"
}

rabbitmq_start() { as_root rabbitmq-server -detached; }


wait_for() {  # name check-function where-to-look
    local name="$1" check="$2" hint="$3" deadline=$((SECONDS + WAIT_SECONDS))
    until "$check"; do
        [ "$SECONDS" -lt "$deadline" ] || die "$name did not answer within ${WAIT_SECONDS}s; see $hint"
        sleep 0.5
    done
    say "$name answers"
}

# PostgreSQL from apt only trusts local socket peers; the tests connect as postgres over TCP.
pg_allow_local_tcp() {
    command -v psql >/dev/null 2>&1 || return 0
    if PGCONNECT_TIMEOUT=3 psql -h "$HOST" -p "$PG_PORT" -U postgres -d postgres -Atqc "select 1" >/dev/null 2>&1; then
        return 0
    fi
    if [ "$1" != "fresh" ]; then
        die "PostgreSQL answers but refuses user postgres on $HOST:$PG_PORT without a password; set PGPASSWORD, or
       add 'host all postgres 127.0.0.1/32 trust' to pg_hba.conf on a machine used only for tests"
    fi
    local hba
    hba="$(as_root su postgres -c "psql -Atqc 'show hba_file'")"
    say "fresh PostgreSQL: trusting user postgres over loopback in $hba (a test machine's setup)"
    as_root sed -i '1i host all postgres 127.0.0.1/32 trust\nhost all postgres ::1/128 trust' "$hba"
    as_root su postgres -c "psql -Atqc 'select pg_reload_conf()'" >/dev/null
}

# TimescaleDB in the local cluster (make test runs on it): installed and preloaded when missing. A
# failure is said loudly but is not fatal: the suite also runs on plain PostgreSQL.
pg_timescaledb() {
    "${BASH_SOURCE[0]%/*}/ensure_timescaledb.sh" ||
        echo "$SCRIPT_NAME: WARNING: continuing on plain PostgreSQL, without TimescaleDB (see above)" >&2
}

main() {
    local wanted=("$@") down=() missing=() packages=() installed_pg=no service
    [ "${#wanted[@]}" -gt 0 ] || wanted=(postgres redis rabbitmq)
    for service in "${wanted[@]}"; do
        case "$service" in
            postgres | redis | rabbitmq) "${service}_up" || down+=("$service") ;;
            *) die "unknown service '$service' (postgres, redis or rabbitmq)" ;;
        esac
    done
    if [ "${#down[@]}" -eq 0 ]; then
        if [[ " ${wanted[*]} " == *" postgres "* ]]; then
            pg_allow_local_tcp existing
            pg_timescaledb
        fi
        say "${wanted[*]} answer on $HOST"
        return 0
    fi

    for service in "${down[@]}"; do
        "${service}_installed" || missing+=("$service")
    done
    for service in "${missing[@]}"; do
        case "$service" in
            postgres) packages+=(postgresql); installed_pg=yes ;;
            redis) packages+=(redis-server) ;;
            rabbitmq) packages+=(rabbitmq-server) ;;
        esac
    done
    [ "${#packages[@]}" -eq 0 ] || apt_install "${packages[@]}"

    for service in "${down[@]}"; do
        # An apt install may already have started it (when the machine runs an init system).
        "${service}_up" && continue
        say "starting $service"
        "${service}_start"
    done
    for service in "${wanted[@]}"; do
        case "$service" in
            postgres) wait_for PostgreSQL postgres_up "/var/log/postgresql/" ;;
            redis) wait_for Redis redis_up "/var/log/redis/ci.log" ;;
            rabbitmq) wait_for RabbitMQ rabbitmq_up "/var/log/rabbitmq/" ;;
        esac
    done
    [[ " ${wanted[*]} " == *" postgres "* ]] || return 0
    if [ "$installed_pg" = yes ]; then pg_allow_local_tcp fresh; else pg_allow_local_tcp existing; fi
    pg_timescaledb
}

main "$@"

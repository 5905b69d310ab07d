#!/usr/bin/env bash
# Make sure the local PostgreSQL cluster on 127.0.0.1:5432 has TimescaleDB installed and preloaded
# (make test runs on it; ensure_services.sh calls this once PostgreSQL answers).
#   available and in shared_preload_libraries -> nothing to do (one psql call: the usual case)
#   installed, not preloaded                  -> add it to shared_preload_libraries, restart
#   not installed                             -> Timescale's apt packages (timescaledb-2-postgresql-NN)
#                                                when that repository is configured, else build the
#                                                source in ../shared/vendor/ (TIMESCALEDB_SOURCE: a
#                                                tarball or an unpacked tree elsewhere); then as above
# Keeps the other shared_preload_libraries entries. If anything fails it says so, leaves the cluster
# running as it was (plain PostgreSQL: TIMESCALEDB=auto then keeps plain tables) and exits 1.
# TIMESCALEDB=off in the environment: nothing is installed.
set -euo pipefail

HOST=127.0.0.1
PG_PORT=5432
WAIT_SECONDS="${SERVICES_WAIT_SECONDS:-120}"
REPO_ROOT="$(cd "${BASH_SOURCE[0]%/*}/.." && pwd)"
VENDOR_DIR="$REPO_ROOT/../shared/vendor"

SCRIPT_NAME=timescaledb
# shellcheck source=scripts/lib.sh
source "${BASH_SOURCE[0]%/*}/lib.sh"  # no dirname: this must run on a bare PATH

psql_q() { PGCONNECT_TIMEOUT=5 psql -X -h "$HOST" -p "$PG_PORT" -U postgres -d postgres -Atqc "$1"; }

# "available preloaded", each yes or no
state() {
    psql_q "SELECT (SELECT CASE WHEN count(*) > 0 THEN 'yes' ELSE 'no' END FROM pg_available_extensions
                    WHERE name = 'timescaledb'),
                   CASE WHEN 'timescaledb' = ANY(string_to_array(replace(
                        current_setting('shared_preload_libraries'), ' ', ''), ','))
                        THEN 'yes' ELSE 'no' END" | tr '|' ' '
}

fail() {
    echo "$SCRIPT_NAME: ERROR: $* -- TimescaleDB NOT installed: PostgreSQL stays plain (TIMESCALEDB=auto keeps" \
        "plain tables; the suite still runs, without the hypertable path). See docs/timescaledb.md." >&2
    exit 1
}

# The Debian cluster (version, name) listening on $PG_PORT, or nothing (not a pg_ctlcluster one).
local_cluster() {
    command -v pg_lsclusters >/dev/null 2>&1 || return 0
    pg_lsclusters -h 2>/dev/null | awk -v port="$PG_PORT" '$3 == port && $4 ~ /^online/ { print $1, $2; exit }'
}

timescale_apt_repo() {
    grep -rqsE 'packagecloud\.io/timescale|timescale' /etc/apt/sources.list.d/ 2>/dev/null
}

missing_packages() {  # the Debian packages named that are not installed
    local package
    for package in "$@"; do
        dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" || echo "$package"
    done
}

find_source() {
    if [ -n "${TIMESCALEDB_SOURCE:-}" ]; then
        [ -e "$TIMESCALEDB_SOURCE" ] || fail "TIMESCALEDB_SOURCE=$TIMESCALEDB_SOURCE does not exist"
        echo "$TIMESCALEDB_SOURCE"
        return
    fi
    local found
    # shellcheck disable=SC2012  # release file names: sort -V picks the newest
    found="$(ls "$VENDOR_DIR"/timescaledb-*.tar.gz 2>/dev/null | sort -V | tail -n 1)"
    [ -n "$found" ] || fail "no TimescaleDB source in $VENDOR_DIR and Timescale's apt repository is not configured:
       configure it (docs/timescaledb.md), or set TIMESCALEDB_SOURCE to the source tarball of a release
       (https://github.com/timescale/timescaledb/releases; 2.28.x for PostgreSQL 15)"
    echo "$found"
}

build_from_source() {  # version
    local version="$1" source build_dir pg_config="/usr/lib/postgresql/$1/bin/pg_config" needed
    source="$(find_source)"
    mapfile -t needed < <(missing_packages "postgresql-server-dev-$version" cmake libssl-dev gcc make)
    if [ "${#needed[@]}" -gt 0 ]; then
        apt_install "${needed[@]}" || fail "could not install the build dependencies ${needed[*]}"
    fi
    [ -x "$pg_config" ] || fail "$pg_config missing (postgresql-server-dev-$version)"
    build_dir="$(mktemp -d "${TMPDIR:-/tmp}/timescaledb-build.XXXXXX")"
    # shellcheck disable=SC2064  # the directory is known now
    trap "rm -rf '$build_dir'" EXIT
    say "building TimescaleDB from $source for PostgreSQL $version (about a minute on 2 cores; log: $build_dir/build.log)"
    if [ -d "$source" ]; then
        cp -a "$source/." "$build_dir/src"
    else
        mkdir "$build_dir/src"
        tar xzf "$source" -C "$build_dir/src" --strip-components=1 || fail "could not unpack $source"
    fi
    local started=$SECONDS
    if ! (
        cd "$build_dir/src" &&
            ./bootstrap -DPG_CONFIG="$pg_config" -DREGRESS_CHECKS=OFF -DTAP_CHECKS=OFF \
                -DWARNINGS_AS_ERRORS=OFF -DSEND_TELEMETRY_DEFAULT=OFF -DCMAKE_BUILD_TYPE=Release &&
            cd build && make -j"$(nproc)"
    ) >"$build_dir/build.log" 2>&1; then
        tail -n 30 "$build_dir/build.log" >&2
        trap - EXIT
        fail "the build failed (log kept: $build_dir/build.log)"
    fi
    (cd "$build_dir/src/build" && as_root make install) >>"$build_dir/build.log" 2>&1 || {
        tail -n 30 "$build_dir/build.log" >&2
        trap - EXIT
        fail "make install failed (log kept: $build_dir/build.log)"
    }
    say "built and installed in $((SECONDS - started))s"
}

install_extension() {  # version
    local version="$1"
    if timescale_apt_repo; then
        apt_install "timescaledb-2-postgresql-$version" ||
            fail "apt-get install timescaledb-2-postgresql-$version failed"
    else
        build_from_source "$version"
    fi
}

wait_answers() {
    local deadline=$((SECONDS + WAIT_SECONDS))
    until pg_isready -q -h "$HOST" -p "$PG_PORT" -t 1; do
        [ "$SECONDS" -lt "$deadline" ] || return 1
        sleep 0.3
    done
}

preload_and_restart() {  # version cluster
    local version="$1" cluster="$2" current libraries auto_conf backup
    current="$(psql_q "SELECT current_setting('shared_preload_libraries')")"
    # Each existing entry quoted on its own (ALTER SYSTEM takes a list), timescaledb appended.
    libraries="$(psql_q "SELECT string_agg(quote_literal(x), ', ') FROM unnest(array_remove(string_to_array(
        replace(current_setting('shared_preload_libraries'), ' ', '') || ',timescaledb', ','), '')) AS x")"
    auto_conf="$(psql_q "SELECT current_setting('data_directory')")/postgresql.auto.conf"
    backup="$(mktemp "${TMPDIR:-/tmp}/postgresql.auto.conf.XXXXXX")"
    as_root cat "$auto_conf" >"$backup"
    say "shared_preload_libraries: '${current}' -> ${libraries}; restarting PostgreSQL $version/$cluster"
    psql_q "ALTER SYSTEM SET shared_preload_libraries = $libraries" >/dev/null
    if ! as_root pg_ctlcluster --skip-systemctl-redirect "$version" "$cluster" restart || ! wait_answers; then
        say "PostgreSQL did not come back with timescaledb preloaded: restoring $auto_conf and starting it as before"
        as_root cp "$backup" "$auto_conf"
        rm -f "$backup"
        as_root pg_ctlcluster --skip-systemctl-redirect "$version" "$cluster" start || true
        wait_answers || die "PostgreSQL $version/$cluster does not start even as before; see /var/log/postgresql/"
        fail "PostgreSQL would not start with timescaledb preloaded (see /var/log/postgresql/)"
    fi
    rm -f "$backup"
}

main() {
    if [ "${TIMESCALEDB:-auto}" = off ]; then
        say "TIMESCALEDB=off: not installing TimescaleDB"
        return 0
    fi
    local current
    current="$(state)" || fail "PostgreSQL on $HOST:$PG_PORT does not answer to user postgres"
    [ "$current" = "yes yes" ] && return 0

    local cluster version name
    cluster="$(local_cluster)"
    [ -n "$cluster" ] || fail "PostgreSQL on $HOST:$PG_PORT is not a local Debian cluster (pg_lsclusters): install
       TimescaleDB on that server yourself (docs/timescaledb.md)"
    read -r version name <<<"$cluster"

    # Two `make test` at once: one installs, the other waits and finds it done. The lock is this
    # script itself, opened for reading: a lock file in /tmp made by root could not be reopened by
    # another user under sudo (fs.protected_regular), nor the reverse.
    exec 9<"${BASH_SOURCE[0]}"
    flock 9
    current="$(state)"
    [ "$current" = "yes yes" ] && return 0
    if [ "${current%% *}" = no ]; then
        say "TimescaleDB is not installed for PostgreSQL $version: installing it"
        install_extension "$version"
        current="$(state)"
        [ "${current%% *}" = yes ] || fail "installed, but PostgreSQL $version does not list timescaledb in pg_available_extensions"
    fi
    [ "${current##* }" = yes ] || preload_and_restart "$version" "$name"
    current="$(state)"
    [ "$current" = "yes yes" ] || fail "timescaledb is still not preloaded after the restart"
    say "TimescaleDB $(psql_q "SELECT default_version FROM pg_available_extensions WHERE name = 'timescaledb'")" \
        "installed and preloaded in PostgreSQL $version/$name"
}

main "$@"

#!/usr/bin/env bash
# A private CA and the server certificates for TLS inside compose (deploy/compose.tls.yml):
#   internal-tls/ca.crt            the CA every process verifies the servers against
#   internal-tls/ca.key            its key (mode 600): keep it off the servers, with the backups of .env
#   internal-tls/postgres.crt/.key for the host name `postgres` (and NAMES below)
#   internal-tls/redis.crt/.key    for `redis`
#   internal-tls/rabbitmq.crt/.key for `rabbitmq`
# The folder ignores itself in git (its own .gitignore). An existing CA is kept (clients keep
# trusting it); server certificates are made again when missing, expiring within 30 days, or with
# --force. EXTRA_NAMES="db.example.com,10.0.0.5" adds names to every server certificate (a host
# install that reaches the servers by other names).
#   scripts/make_internal_certs.sh [--force] [DIR]     DIR defaults to ./internal-tls
# CERT_DAYS (825) sets how long a server certificate lasts; the CA lasts 10 years.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
FORCE=no
DIR=""
for arg in "$@"; do
    case "$arg" in
        --force) FORCE=yes ;;
        -h | --help) awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; exit 0 ;;
        -*) echo "internal-certs: unknown option $arg" >&2; exit 2 ;;
        *) DIR="$arg" ;;
    esac
done
DIR="${DIR:-$ROOT/internal-tls}"
DAYS="${CERT_DAYS:-825}"

say() { echo "internal-certs: $*"; }
die() { echo "internal-certs: ERROR: $*" >&2; exit 1; }

command -v openssl >/dev/null 2>&1 || die "openssl is missing; on Debian/Ubuntu: sudo apt-get install -y openssl"
[[ "$DAYS" =~ ^[1-9][0-9]*$ ]] || die "CERT_DAYS must be a whole number of days, got '$DAYS'"

mkdir -p "$DIR"
[ -f "$DIR/.gitignore" ] || printf '# keys: never in git\n*\n' >"$DIR/.gitignore"
umask 077
log="$(mktemp)"
trap 'rm -f "$log"' EXIT
run() { "$@" 2>"$log" || { cat "$log" >&2; die "openssl failed: $*"; }; }

if [ ! -s "$DIR/ca.crt" ] || [ ! -s "$DIR/ca.key" ]; then
    run openssl req -x509 -new -nodes -days 3650 \
        -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 \
        -keyout "$DIR/ca.key" -out "$DIR/ca.crt" \
        -subj "/O=tradingapp/CN=tradingapp internal CA" \
        -addext "basicConstraints=critical,CA:TRUE,pathlen:0" \
        -addext "keyUsage=critical,keyCertSign,cRLSign"
    chmod 644 "$DIR/ca.crt"
    say "made a new CA: $DIR/ca.crt"
fi

for name in postgres redis rabbitmq; do
    crt="$DIR/$name.crt"
    key="$DIR/$name.key"
    if [ "$FORCE" = no ] && [ -s "$crt" ] && [ -s "$key" ] &&
        openssl x509 -in "$crt" -noout -checkend $((30 * 24 * 3600)) >/dev/null 2>&1 &&
        openssl verify -CAfile "$DIR/ca.crt" "$crt" >/dev/null 2>&1; then
        say "kept $crt"
        continue
    fi
    sans="DNS:$name,DNS:localhost,IP:127.0.0.1"
    IFS=',' read -ra extra <<<"${EXTRA_NAMES:-}"
    for more in "${extra[@]}"; do
        [ -n "$more" ] || continue
        if [[ "$more" =~ ^[0-9.]+$ || "$more" == *:* ]]; then sans+=",IP:$more"; else sans+=",DNS:$more"; fi
    done
    run openssl req -new -nodes -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 \
        -keyout "$key" -out "$DIR/$name.csr" -subj "/O=tradingapp/CN=$name"
    printf 'subjectAltName=%s\nbasicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\n' \
        "$sans" >"$DIR/$name.ext"
    run openssl x509 -req -in "$DIR/$name.csr" -CA "$DIR/ca.crt" -CAkey "$DIR/ca.key" -CAcreateserial \
        -days "$DAYS" -extfile "$DIR/$name.ext" -out "$crt"
    rm -f "$DIR/$name.csr" "$DIR/$name.ext"
    chmod 644 "$crt"
    chmod 600 "$key"
    say "wrote $crt ($sans; valid $DAYS days)"
done

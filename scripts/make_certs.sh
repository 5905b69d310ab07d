#!/usr/bin/env bash
# A self-signed certificate for running the `frontend` service (nginx on 443) locally:
#   ssl/cert.pem  the certificate, for localhost, 127.0.0.1 and ::1 (subjectAltName)
#   ssl/key.pem   its private key (P-256, mode 600)
# docker-compose.yml mounts ./ssl at /etc/nginx/ssl. Browsers warn about a self-signed certificate
# (trust ssl/cert.pem locally, or use a real pair for a public host: same two file names).
#
# Idempotent: a pair that exists, matches, names localhost and 127.0.0.1 and stays valid for
# another 30 days is kept. --force makes a new one anyway.
#   scripts/make_certs.sh [--force] [DIR]        DIR defaults to ./ssl of the repository
# CERT_DAYS (365) sets how long a new certificate lasts.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
FORCE=no
DIR=""
for arg in "$@"; do
    case "$arg" in
        --force) FORCE=yes ;;
        -h | --help) awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; exit 0 ;;
        -*) echo "certs: unknown option $arg" >&2; exit 2 ;;
        *) DIR="$arg" ;;
    esac
done
DIR="${DIR:-$ROOT/ssl}"
DAYS="${CERT_DAYS:-365}"
CERT="$DIR/cert.pem"
KEY="$DIR/key.pem"

say() { echo "certs: $*"; }
die() { echo "certs: ERROR: $*" >&2; exit 1; }

command -v openssl >/dev/null 2>&1 || die "openssl is missing; on Debian/Ubuntu: sudo apt-get install -y openssl"
[[ "$DAYS" =~ ^[1-9][0-9]*$ ]] || die "CERT_DAYS must be a whole number of days, got '$DAYS'"

pubkey_of_cert() { openssl x509 -in "$CERT" -noout -pubkey 2>/dev/null; }
pubkey_of_key() { openssl pkey -in "$KEY" -pubout 2>/dev/null; }

usable() {
    [ -s "$CERT" ] && [ -s "$KEY" ] || return 1
    # valid for 30 more days
    openssl x509 -in "$CERT" -noout -checkend $((30 * 24 * 3600)) >/dev/null 2>&1 || return 1
    local sans
    sans="$(openssl x509 -in "$CERT" -noout -ext subjectAltName 2>/dev/null)" || return 1
    grep -q "DNS:localhost" <<<"$sans" && grep -q "IP Address:127.0.0.1" <<<"$sans" || return 1
    [ "$(pubkey_of_cert)" = "$(pubkey_of_key)" ]
}

if [ "$FORCE" = no ] && usable; then
    say "kept $CERT (valid until $(openssl x509 -in "$CERT" -noout -enddate | cut -d= -f2))"
    exit 0
fi

mkdir -p "$DIR"
umask 077
tmp="$(mktemp -d "$DIR/.certs.XXXXXX")"
trap 'rm -rf "$tmp"' EXIT

# A leaf certificate signed by its own key: not a CA (browsers refuse a CA certificate as a
# server's), for server authentication only, naming every local address in subjectAltName.
openssl req -x509 -new -nodes -days "$DAYS" \
    -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 \
    -keyout "$tmp/key.pem" -out "$tmp/cert.pem" \
    -subj "/O=tradingapp (local)/CN=localhost" \
    -addext "subjectAltName=DNS:localhost,IP:127.0.0.1,IP:::1" \
    -addext "basicConstraints=critical,CA:FALSE" \
    -addext "keyUsage=critical,digitalSignature" \
    -addext "extendedKeyUsage=serverAuth" \
    2>"$tmp/openssl.log" || { cat "$tmp/openssl.log" >&2; die "openssl could not make the certificate"; }

chmod 600 "$tmp/key.pem"
chmod 644 "$tmp/cert.pem"
# Key first, then certificate, each replaced in one rename: nginx never reads half a file.
mv -f "$tmp/key.pem" "$KEY"
mv -f "$tmp/cert.pem" "$CERT"
say "wrote $CERT and $KEY (self-signed for localhost, 127.0.0.1, ::1; valid $DAYS days)"

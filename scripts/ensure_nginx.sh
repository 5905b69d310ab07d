#!/usr/bin/env bash
# Make sure Debian's nginx is installed for tests/test_nginx.py (the `frontend` service's config run
# in front of the test stack). It is only installed, never started or enabled here: the test runs
# its own nginx on free ports with its own prefix.
#   installed     -> nothing to do
#   not installed -> apt-get install nginx (sudo when not root)
# The package's own service (its default site on port 80) is stopped again when apt's scripts
# started it, so a test machine does not keep a server listening that nobody asked for.
set -euo pipefail

say() { echo "nginx: $*"; }
die() { echo "nginx: ERROR: $*" >&2; exit 1; }

as_root() {
    if [ "$(id -u)" -eq 0 ]; then
        "$@"
    elif command -v sudo >/dev/null 2>&1; then
        sudo "$@"
    else
        die "need root for '$*' and sudo is not installed; run it as root once"
    fi
}

nginx_bin() { command -v nginx 2>/dev/null || { [ -x /usr/sbin/nginx ] && echo /usr/sbin/nginx; }; }

main() {
    local bin
    if bin="$(nginx_bin)"; then
        say "$("$bin" -v 2>&1 | sed 's/^nginx version: //') at $bin"
        return 0
    fi
    command -v apt-get >/dev/null 2>&1 || die "nginx is missing and this is not a Debian/Ubuntu system; install nginx"
    say "installing nginx"
    as_root apt-get update -qq
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends nginx
    bin="$(nginx_bin)" || die "apt-get installed nginx but no nginx binary is on PATH or in /usr/sbin"
    if [ -s /run/nginx.pid ]; then
        say "stopping the packaged service apt started (the tests run their own nginx)"
        as_root "$bin" -s quit || true
    fi
    say "$("$bin" -v 2>&1 | sed 's/^nginx version: //') installed at $bin"
}

main "$@"

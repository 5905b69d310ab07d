#!/usr/bin/env bash
# Make sure the machine tools the tests drive are installed: `ensure_tools.sh chromium nginx`.
# Each one missing is installed with apt-get (sudo when not root), saying so first.
set -euo pipefail

say() { echo "tools: $*"; }
die() { echo "tools: ERROR: $*" >&2; exit 1; }

as_root() {
    if [ "$(id -u)" -eq 0 ]; then
        "$@"
    elif command -v sudo >/dev/null 2>&1; then
        sudo "$@"
    else
        die "need root for '$*' and sudo is not installed; run it as root once"
    fi
}

binary_of() {  # the command that shows the package is installed
    case "$1" in
        chromium) echo chromium ;;
        nginx) echo nginx ;;
        *) die "unknown tool '$1' (chromium or nginx)" ;;
    esac
}

missing=()
for tool in "$@"; do
    binary="$(binary_of "$tool")"
    command -v "$binary" >/dev/null 2>&1 || [ -x "/usr/sbin/$binary" ] || missing+=("$tool")
done
[ "${#missing[@]}" -gt 0 ] || exit 0
command -v apt-get >/dev/null 2>&1 ||
    die "${missing[*]} missing and this machine has no apt-get: install ${missing[*]} with its package manager"
say "installing ${missing[*]} with apt-get (Debian's packages; no browser is downloaded otherwise)"
as_root apt-get update -qq
# nginx-light: the nginx binary without the modules the tests do not use; the service is not started.
packages=("${missing[@]/#nginx/nginx-light}")
as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${packages[@]}"

# Shared by the scripts that set this machine up (sourced; SCRIPT_NAME names the caller in messages).
# shellcheck shell=bash

say() { echo "${SCRIPT_NAME}: $*"; }
die() { echo "${SCRIPT_NAME}: ERROR: $*" >&2; exit 1; }

as_root() {
    if [ "$(id -u)" -eq 0 ]; then
        "$@"
    elif command -v sudo >/dev/null 2>&1; then
        sudo "$@"
    else
        die "need root for '$*' and sudo is not installed; run it as root once"
    fi
}

apt_install() {
    command -v apt-get >/dev/null 2>&1 ||
        die "$* missing and this machine has no apt-get: install $* with its package manager, then run this again"
    say "installing $* with apt-get (a few minutes on a fresh machine)"
    as_root apt-get update -qq
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@"
}

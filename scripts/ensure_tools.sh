#!/usr/bin/env bash
# Make sure the machine tools the tests drive are installed: `ensure_tools.sh chromium nginx`,
# `ensure_tools.sh prometheus alertmanager` (promtool, amtool and the Prometheus server the
# dashboards test starts on a port of its own).
# Each one missing is installed with apt-get (sudo when not root), saying so first.
set -euo pipefail

SCRIPT_NAME=tools
# shellcheck source=scripts/lib.sh
source "${BASH_SOURCE[0]%/*}/lib.sh"  # no dirname: this must run on a bare PATH

binary_of() {  # the command that shows the package is installed
    case "$1" in
        chromium) echo chromium ;;
        nginx) echo nginx ;;
        prometheus) echo promtool ;;
        alertmanager) echo amtool ;;
        pgbackrest) echo pgbackrest ;;
        patroni) echo patroni ;;
        etcd) echo etcd ;;
        *) die "unknown tool '$1' (chromium, nginx, prometheus, alertmanager, pgbackrest, patroni or etcd)" ;;
    esac
}

missing=()
for tool in "$@"; do
    binary="$(binary_of "$tool")"
    command -v "$binary" >/dev/null 2>&1 || [ -x "/usr/sbin/$binary" ] || missing+=("$tool")
done
[ "${#missing[@]}" -gt 0 ] || exit 0
# nginx-light: the nginx binary without the modules the tests do not use; the service is not started.
# Debian's chromium: no browser is downloaded otherwise.
# prometheus / prometheus-alertmanager: Debian's packages (promtool comes with the server, amtool with
# alertmanager). Where systemd runs, Debian also starts their services on 9090/9093; the tests never
# use those (they start their own Prometheus on a free port).
# pgbackrest, patroni, etcd-server: the disaster-recovery and failover drills run their own clusters,
# etcd and repositories on free ports; Debian's etcd service (where systemd starts it) is not used.
packages=()
for tool in "${missing[@]}"; do
    case "$tool" in
        nginx) packages+=(nginx-light) ;;
        alertmanager) packages+=(prometheus-alertmanager) ;;
        etcd) packages+=(etcd-server etcd-client) ;;
        *) packages+=("$tool") ;;
    esac
done
apt_install "${packages[@]}"

#!/bin/sh
# The compose `backup` service: a daily full backup at FULL_HOUR (01:00) and an incremental at
# each of the other hours, in the container's time zone (TZ, UTC by default). A host install uses the
# crontab beside this file instead.
#
# At start: the stanza is created (idempotent) and checked (archive_command reaches the
# repository), and a full backup is taken when the repository holds none, so a fresh deployment is
# covered from its first hour. A failed backup is logged and tried again at the next hour; the
# exit status of each run is in /var/log/pgbackrest/last-backup (the backup dashboards' source).
set -u

STANZA=${PGBACKREST_STANZA:-main}
FULL_HOUR=${BACKUP_FULL_HOUR:-1}
STATUS=/var/log/pgbackrest/last-backup

log() { echo "$(date -u +%Y-%m-%dT%H:%M:%SZ) backup-schedule: $*"; }

backup() {
    log "starting $1 backup"
    if pgbackrest --stanza="$STANZA" --type="$1" backup; then
        log "$1 backup done"
        echo "$(date -u +%s) $1 ok" >"$STATUS"
    else
        log "$1 backup FAILED (exit $?); next try at the next hour"
        echo "$(date -u +%s) $1 failed" >"$STATUS"
    fi
}

until pgbackrest --stanza="$STANZA" stanza-create; do
    log "stanza-create failed (PostgreSQL not up yet?); again in 30 s"
    sleep 30
done
pgbackrest --stanza="$STANZA" check || log "check FAILED: is archive_command set on the server?"
if ! pgbackrest --stanza="$STANZA" info --output=json | grep -q '"label"'; then
    backup full
fi

while :; do
    # Sleep to the next full hour, then back up.
    now=$(date +%s)
    sleep $((3600 - now % 3600))
    hour=$(date +%H | sed 's/^0//')
    if [ "${hour:-0}" -eq "$FULL_HOUR" ]; then
        backup full
    else
        backup incr
    fi
done

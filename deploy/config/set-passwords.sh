#!/usr/bin/env bash
# Sets each Tributary role's PostgreSQL password from its secret file (the one its systemd
# unit loads as a credential), as a PostgreSQL administrator:
#   set-passwords.sh [SECRETS_DIR]    default /etc/tributary/secrets; psql's PG* variables apply
set -euo pipefail
dir=${1:-/etc/tributary/secrets}
declare -A role=([collector]=tributary_collector [hydration]=tributary_hydration [aggregator]=tributary_aggregator
                 [forwarder]=tributary_forwarder [health-checker]=tributary_health)
for d in collector hydration aggregator forwarder health-checker; do
    file=$dir/$d-db
    [ -s "$file" ] || { echo "set-passwords.sh: $file is missing or empty" >&2; exit 1; }
    # The password travels as a psql variable, quoted by psql (:'pw'), never through the shell's arguments.
    echo "ALTER ROLE ${role[$d]} PASSWORD :'pw';" | psql -v ON_ERROR_STOP=1 -q -v pw="$(cat "$file")" >/dev/null
    echo "password of ${role[$d]} set from $file"
done

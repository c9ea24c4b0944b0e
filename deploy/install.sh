#!/usr/bin/env bash
# Installs or removes Tributary (make install / make uninstall):
#   install.sh install BIN_DIR    release binaries, systemd units, example config, SQL, docs
#   install.sh uninstall          removes what install put there (keeps config and secrets)
# Honours DESTDIR, PREFIX (/usr/local), BINDIR, SYSCONFDIR (/etc), DATADIR, DOCDIR, UNITDIR
# and SYSUSERSDIR from the environment. Never overwrites a config or a secret that exists.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
DESTDIR=${DESTDIR:-}
PREFIX=${PREFIX:-/usr/local}
BINDIR=${BINDIR:-$PREFIX/bin}
SYSCONFDIR=${SYSCONFDIR:-/etc}
DATADIR=${DATADIR:-$PREFIX/share}
DOCDIR=${DOCDIR:-$DATADIR/doc/tributary}
UNITDIR=${UNITDIR:-$PREFIX/lib/systemd/system}
SYSUSERSDIR=${SYSUSERSDIR:-$PREFIX/lib/sysusers.d}
daemons=(collector hydration aggregator forwarder health-checker)
units=(tributary.target)
for d in "${daemons[@]}"; do units+=("tributary-$d.service"); done
for d in hydration aggregator forwarder; do units+=("tributary-$d@.service"); done

die() { echo "install.sh: $*" >&2; exit 1; }

install_all() {
    local bin=$1
    for d in "${daemons[@]}"; do [ -x "$bin/$d" ] || die "$bin/$d is missing: build first (swift build -c release)"; done
    install -d "$DESTDIR$BINDIR" "$DESTDIR$UNITDIR" "$DESTDIR$SYSUSERSDIR" "$DESTDIR$DATADIR/tributary" \
        "$DESTDIR$DOCDIR/runbooks" "$DESTDIR$SYSCONFDIR/tributary"
    install -d -m 0700 "$DESTDIR$SYSCONFDIR/tributary/secrets"
    for d in "${daemons[@]}"; do install -m 0755 "$bin/$d" "$DESTDIR$BINDIR/tributary-$d"; done
    for u in "${units[@]}"; do
        sed -e "s#@BINDIR@#$BINDIR#g" -e "s#@SYSCONFDIR@#$SYSCONFDIR#g" -e "s#@DOCDIR@#$DOCDIR#g" \
            "$root/deploy/systemd/$u" >"$DESTDIR$UNITDIR/$u"
        chmod 0644 "$DESTDIR$UNITDIR/$u"
    done
    echo 'u tributary - "Tributary event pipeline" /var/lib/tributary' >"$DESTDIR$SYSUSERSDIR/tributary.conf"
    install -m 0644 "$root/deploy/config/roles.sql" "$root/deploy/config/tributary.example.yaml" "$DESTDIR$DATADIR/tributary/"
    install -m 0755 "$root/deploy/config/set-passwords.sh" "$DESTDIR$DATADIR/tributary/"
    install -m 0644 "$root"/docs/*.md "$root"/docs/*.yaml "$DESTDIR$DOCDIR/"
    install -m 0644 "$root"/docs/runbooks/*.md "$DESTDIR$DOCDIR/runbooks/"
    local config=$DESTDIR$SYSCONFDIR/tributary/tributary.yaml
    [ -e "$config" ] || install -m 0644 "$root/deploy/config/tributary.example.yaml" "$config"
    # One random password per role and an admin token, each only if missing (the units load them).
    local secret
    for name in "${daemons[@]/%/-db}" admin-token; do
        secret=$DESTDIR$SYSCONFDIR/tributary/secrets/$name
        [ -e "$secret" ] || (umask 077; head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$secret")
    done
    echo "installed into ${DESTDIR:-/}: binaries in $BINDIR, units in $UNITDIR, config in $SYSCONFDIR/tributary"
    echo "next: systemd-sysusers; psql -f $DATADIR/tributary/roles.sql; $DATADIR/tributary/set-passwords.sh;"
    echo "      edit $SYSCONFDIR/tributary/tributary.yaml; systemctl daemon-reload; systemctl enable --now tributary.target"
}

uninstall_all() {
    for d in "${daemons[@]}"; do rm -f "$DESTDIR$BINDIR/tributary-$d"; done
    for u in "${units[@]}"; do rm -f "$DESTDIR$UNITDIR/$u"; done
    rm -f "$DESTDIR$SYSUSERSDIR/tributary.conf"
    rm -rf "$DESTDIR$DATADIR/tributary" "$DESTDIR$DOCDIR"
    echo "removed Tributary from ${DESTDIR:-/}$PREFIX; kept $SYSCONFDIR/tributary (config and secrets) and /var/lib/tributary"
}

case ${1:-} in
    install) [ $# -eq 2 ] || die "usage: install.sh install BIN_DIR"; install_all "$2" ;;
    uninstall) uninstall_all ;;
    *) sed -n '2,6p' "$0" | sed 's/^# \{0,1\}//'; exit 2 ;;
esac

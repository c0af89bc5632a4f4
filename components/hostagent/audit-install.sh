# Install the service audit (audit.py read from stdin), its hourly timer, and
# run it once now, printing the JSON report.
# usage: audit-install FAIL_ON HOST_NAME SCHEDULE [SERVICES_JSON]  < audit.py
#   FAIL_ON        any | critical | never: which violations fail this run
#   SCHEDULE       systemd OnCalendar= expression for the timer, e.g. hourly
#   SERVICES_JSON  the declaration, for hosts cloud-init did not write it on
fail_on=$1
host_name=$2
schedule=$3
services_json=${4:-}
lib=${HD_AUDIT_PATH%/*}
services=$HD_SERVICES_PATH
need python3 python3
need ss iproute2

umask 022
mkdir -p "$lib" "${services%/*}"
cat >"$HD_AUDIT_PATH.new"
python3 -c 'import ast, sys; ast.parse(open(sys.argv[1]).read())' "$HD_AUDIT_PATH.new" \
    || die "the audit module did not arrive intact"
mv "$HD_AUDIT_PATH.new" "$HD_AUDIT_PATH"
if [ -n "$services_json" ]; then
    printf '%s\n' "$services_json" >"$services.new"
    mv "$services.new" "$services"
fi
[ -s "$services" ] || die "$services is missing: cloud-init writes it on hardened-do droplets; pass the declaration for other hosts"

cat >/etc/systemd/system/hardened-do-audit.service <<UNIT
[Unit]
Description=hardened-do service audit (listeners against declared services)
Documentation=file://$services
After=network-online.target

[Service]
Type=oneshot
ExecStart=/usr/bin/env python3 $HD_AUDIT_PATH --services $services --journal --quiet
# Reads sockets and /proc, writes nothing but the journal.
ProtectSystem=strict
ProtectHome=read-only
PrivateTmp=yes
NoNewPrivileges=yes
UNIT
cat >/etc/systemd/system/hardened-do-audit.timer <<UNIT
[Unit]
Description=Run the hardened-do service audit ($schedule)

[Timer]
OnCalendar=$schedule
RandomizedDelaySec=300
Persistent=true

[Install]
WantedBy=timers.target
UNIT
systemctl daemon-reload
systemctl enable --now hardened-do-audit.timer >/dev/null 2>&1 || die "cannot enable hardened-do-audit.timer"

# The deploy-time run: JSON on stdout for Pulumi, violations at or above
# FAIL_ON on stderr and in the exit status (which fails `pulumi up`). They
# go to the journal too, like the timer's.
python3 "$HD_AUDIT_PATH" --services "$services" --host-name "$host_name" --fail-on "$fail_on" --journal

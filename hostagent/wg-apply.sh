# Install the mesh config read from stdin as /etc/wireguard/IFACE.conf and
# bring it into effect without dropping tunnels: peers change with
# `wg syncconf` while the interface is up; only a change to the [Interface]
# section (address, port, hooks) restarts it.
# usage: wg-apply IFACE GATEWAY(0|1)  < IFACE.conf
iface=$1
gateway=${2:-0}
need wg wireguard-tools
need wg-quick wireguard-tools
[ -s "/etc/wireguard/$iface.key" ] || die "/etc/wireguard/$iface.key is missing; run wg-keygen first"

umask 077
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cat >"$tmp/$iface.conf"
# Parses the file the way wg-quick will: a bad config fails here, before it
# replaces a working one.
wg-quick strip "$tmp/$iface.conf" >"$tmp/stripped"

conf=/etc/wireguard/$iface.conf
interface_section() { sed '/^\[Peer\]/,$d' "$1" 2>/dev/null || true; }
old_interface=$(interface_section "$conf")
new_interface=$(interface_section "$tmp/$iface.conf")
install -m 0600 "$tmp/$iface.conf" "$conf"

if [ "$gateway" = 1 ] && command -v ufw >/dev/null 2>&1; then
    # Admin peers reach the mesh through this host: let UFW route between
    # tunnel peers (and nothing else) across wg0.
    ufw route allow in on "$iface" out on "$iface" comment "hardened-do mesh gateway" >/dev/null
fi

if ip link show dev "$iface" >/dev/null 2>&1; then
    if [ "$old_interface" = "$new_interface" ]; then
        wg syncconf "$iface" "$tmp/stripped"
        action=synced
    else
        systemctl restart "wg-quick@$iface"
        action=restarted
    fi
    systemctl enable "wg-quick@$iface" >/dev/null 2>&1
else
    systemctl enable --now "wg-quick@$iface" >/dev/null 2>&1 \
        || die "wg-quick@$iface failed to start: $(journalctl -u "wg-quick@$iface" -n 5 --no-pager 2>&1 | tail -n 3)"
    action=started
fi
echo "$iface $action: $(wg show "$iface" peers | wc -l) peers"

# Install the mesh config read from stdin as /etc/wireguard/IFACE.conf and
# bring it into effect without dropping tunnels: peers change with
# `wg syncconf` while the interface is up; only a change to the [Interface]
# section (address, port, hooks) restarts it. A config that does not come up
# is rolled back to the one that worked.
#
# RULES (optional) admits `internal` services over the tunnel from named
# peers only: space-separated `proto/port/ip,ip` (`-` for no source). UFW
# gets one `allow in on IFACE` rule per source, and rules from an earlier
# deploy that are no longer wanted are deleted (the last set is kept in
# /etc/hardened-do/IFACE-overlay.rules).
# usage: wg-apply IFACE GATEWAY(0|1) [RULES]  < IFACE.conf
iface=$1
gateway=${2:-0}
rules=${3:-}
need wg wireguard-tools
need wg-quick wireguard-tools
[ -s "/etc/wireguard/$iface.key" ] || die "/etc/wireguard/$iface.key is missing; run wg-keygen first"

umask 077
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cat >"$tmp/$iface.conf"
# What `wg` itself will read: anything but its own keys is a mistake that
# would only surface when the interface restarts.
wg-quick strip "$tmp/$iface.conf" >"$tmp/stripped"
if grep -Ev '^[[:space:]]*($|#|\[Interface\]|\[Peer\]|(PrivateKey|ListenPort|FwMark|PublicKey|PresharedKey|AllowedIPs|Endpoint|PersistentKeepalive)[[:space:]]*=)' \
    "$tmp/stripped" >"$tmp/unknown"; then
    die "config refused, unknown lines: $(head -n 3 "$tmp/unknown" | tr '\n' ' ')"
fi

conf=/etc/wireguard/$iface.conf
interface_section() { sed '/^\[Peer\]/,$d' "$1" 2>/dev/null || true; }

if [ "$gateway" = 1 ] && command -v ufw >/dev/null 2>&1; then
    # Admin peers reach the mesh through this host: let UFW route between
    # tunnel peers (and nothing else) across the interface.
    ufw route allow in on "$iface" out on "$iface" comment "hardened-do mesh gateway" >/dev/null
fi

if ip link show dev "$iface" >/dev/null 2>&1 \
    && [ "$(interface_section "$conf")" = "$(interface_section "$tmp/$iface.conf")" ]; then
    # `wg syncconf` (like setconf) takes a config without PrivateKey to mean
    # "no key" and would clear it, silencing every tunnel. Its input gets
    # the host's key from the key file, in this private temporary directory
    # only (never on a command line, never in the config on disk).
    awk -v keyfile="/etc/wireguard/$iface.key" '
        { print }
        /^\[Interface\]/ && !done { getline key < keyfile; print "PrivateKey = " key; done = 1 }
    ' "$tmp/stripped" >"$tmp/sync"
    wg syncconf "$iface" "$tmp/sync"
    install -m 0600 "$tmp/$iface.conf" "$conf"
    action=synced
else
    [ -f "$conf" ] && cp -p "$conf" "$tmp/previous.conf"
    install -m 0600 "$tmp/$iface.conf" "$conf"
    if ip link show dev "$iface" >/dev/null 2>&1; then
        action=restarted
        systemctl restart "wg-quick@$iface" >/dev/null 2>&1 || failed=1
    else
        action=started
        systemctl start "wg-quick@$iface" >/dev/null 2>&1 || failed=1
    fi
    if [ "${failed:-0}" = 1 ]; then
        why=$(journalctl -u "wg-quick@$iface" -n 3 --no-pager -o cat 2>&1 | tr '\n' ' ')
        if [ -f "$tmp/previous.conf" ]; then
            install -m 0600 "$tmp/previous.conf" "$conf"
            systemctl restart "wg-quick@$iface" >/dev/null 2>&1 || true
            die "wg-quick@$iface did not come up with the new config (rolled back): $why"
        fi
        die "wg-quick@$iface did not come up: $why"
    fi
fi
systemctl enable "wg-quick@$iface" >/dev/null 2>&1

if command -v ufw >/dev/null 2>&1; then
    state=/etc/hardened-do/$iface-overlay.rules
    mkdir -p /etc/hardened-do
    : >"$tmp/want"
    for rule in $rules; do
        case $rule in
            tcp/*/* | udp/*/*) ;;
            *) die "overlay rule refused: $rule" ;;
        esac
        proto=${rule%%/*}
        rest=${rule#*/}
        port=${rest%%/*}
        sources=${rest#*/}
        case $port$sources in
            *[!0-9.,-]*) die "overlay rule refused: $rule" ;;
        esac
        [ "$sources" = - ] && continue
        for src in $(printf '%s' "$sources" | tr ',' ' '); do
            echo "$proto $port $src" >>"$tmp/want"
        done
    done
    sort -u -o "$tmp/want" "$tmp/want"
    [ -f "$state" ] || : >"$state"
    sort -o "$tmp/had" "$state"
    comm -23 "$tmp/had" "$tmp/want" | while read -r proto port src; do
        ufw delete allow in on "$iface" from "$src" to any port "$port" proto "$proto" >/dev/null 2>&1 || true
    done
    comm -13 "$tmp/had" "$tmp/want" | while read -r proto port src; do
        ufw allow in on "$iface" from "$src" to any port "$port" proto "$proto" \
            comment "hardened-do overlay" >/dev/null || die "ufw refused: $proto $port from $src"
    done
    install -m 0644 "$tmp/want" "$state"
fi
echo "$iface $action: $(wg show "$iface" peers | wc -l) peers"

# WireGuard key of this host: created once, kept forever, never sent anywhere.
# Prints only the public key (what Pulumi records).
# usage: wg-keygen IFACE
iface=${1:-wg0}
need wg wireguard-tools
umask 077
mkdir -p /etc/wireguard
key=/etc/wireguard/$iface.key
if [ ! -s "$key" ]; then
    wg genkey >"$key.new"
    mv "$key.new" "$key"
fi
wg pubkey <"$key"

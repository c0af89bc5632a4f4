# Tell fail2ban never to ban the bastion: behind it, every SSH session (each
# admin's and each deploy command's) arrives from its VPC address, so a ban
# would lock everyone out of this host. Lifts a ban that is already in place.
# usage: fail2ban-ignore BASTION_ADDRESS
address=$1
case $address in
    *[!0-9a-fA-F.:]* | "") die "not an IP address: $address" ;;
esac
need fail2ban-client fail2ban
conf=/etc/fail2ban/jail.d/zz-hardened-do-bastion.local
umask 022
cat >"$conf.new" <<CONF
# Managed by hardened-do (pushed at deploy time: the bastion's address is not
# known when this host boots). Read after hardened-do.local, so it replaces
# that file's ignoreip.
[DEFAULT]
ignoreip = 127.0.0.1/8 ::1 $address
CONF
if cmp -s "$conf.new" "$conf"; then
    rm -f "$conf.new"
else
    mv "$conf.new" "$conf"
    fail2ban-client reload >/dev/null 2>&1 || die "fail2ban did not reload with $conf"
fi
fail2ban-client set sshd unbanip "$address" >/dev/null 2>&1 || true
echo "fail2ban ignores $address"

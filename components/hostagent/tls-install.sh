# Install a signed host certificate next to its key, and the CA in the
# system trust store. Refuses a certificate that does not match the key on
# disk (say, one signed for a key that was since regenerated).
# usage: tls-install DIR CERT_PEM CHAIN_PEM ROOT_PEM TRUST_PATH [RELOAD_COMMAND]
dir=$1
cert=$2
chain=$3
root=$4
trust=$5
reload=${6:-}
need openssl openssl
need update-ca-certificates ca-certificates
[ -s "$dir/host.key" ] || die "$dir/host.key is missing; run tls-csr first"

umask 022
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
printf '%s\n' "$cert" >"$tmp/host.crt"
printf '%s\n' "$root" >"$tmp/ca.crt"
if [ -n "$chain" ]; then
    printf '%s\n' "$chain" >"$tmp/intermediate.crt"
    cat "$tmp/intermediate.crt" "$tmp/ca.crt" >"$tmp/chain.crt"
    cat "$tmp/host.crt" "$tmp/intermediate.crt" >"$tmp/fullchain.crt"
    untrusted="-untrusted $tmp/intermediate.crt"
else
    cp "$tmp/ca.crt" "$tmp/chain.crt"
    cp "$tmp/host.crt" "$tmp/fullchain.crt"
    untrusted=
fi

cert_key=$(openssl x509 -noout -pubkey -in "$tmp/host.crt")
host_key=$(openssl pkey -pubout -in "$dir/host.key")
[ "$cert_key" = "$host_key" ] || die "the certificate does not match $dir/host.key"
# shellcheck disable=SC2086
openssl verify -CAfile "$tmp/ca.crt" $untrusted "$tmp/host.crt" >/dev/null \
    || die "the certificate does not verify against the CA it came with"

for f in host.crt chain.crt fullchain.crt ca.crt; do
    install -m 0644 "$tmp/$f" "$dir/$f"
done
mkdir -p "$(dirname "$trust")"
if ! cmp -s "$tmp/ca.crt" "$trust"; then
    install -m 0644 "$tmp/ca.crt" "$trust"
    # Its `rehash` step warns on stderr about ca-certificates.crt (a bundle,
    # not one certificate) on every run; keep the output for a real failure.
    if ! out=$(update-ca-certificates 2>&1); then
        die "update-ca-certificates failed: $(printf '%s' "$out" | tail -n 3 | tr '\n' ' ')"
    fi
fi
if [ -n "$reload" ]; then
    sh -c "$reload" || die "the reload command failed: $reload"
fi
openssl x509 -noout -subject -enddate -fingerprint -sha256 -in "$dir/host.crt"

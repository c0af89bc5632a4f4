# Host TLS key (ECDSA P-256): created once on the host, never sent anywhere.
# Writes the openssl request config read from stdin and prints only the CSR
# (what Pulumi signs).
# usage: tls-csr DIR  < openssl.cnf
dir=${1:-$HD_TLS_DIR}
need openssl openssl
umask 077
mkdir -p "$dir"
chmod 0755 "$dir"
key=$dir/host.key
if [ ! -s "$key" ]; then
    openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 \
        -pkeyopt ec_param_enc:named_curve -out "$key.new" 2>/dev/null
    mv "$key.new" "$key"
fi
umask 022
cat >"$dir/host.csr.cnf"
openssl req -new -key "$key" -config "$dir/host.csr.cnf" -out "$dir/host.csr"
cat "$dir/host.csr"

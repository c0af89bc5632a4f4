# hardened-do host script prelude.
set -eu
PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
export PATH LC_ALL=C

# Tools come with cloud-init's package stage and the trust store with its
# ca-certificates; acting before cloud-init finishes races apt. A host not
# built by cloud-init has no `cloud-init`, and an error in an unrelated
# cloud-init module must not block us: `need` below names what is missing.
if command -v cloud-init >/dev/null 2>&1; then
    cloud-init status --wait >/dev/null 2>&1 || true
fi

die() {
    echo "hardened-do: $(hostname): $*" >&2
    exit 1
}

need() {
    command -v "$1" >/dev/null 2>&1 || die "'$1' is not installed (package $2)"
}

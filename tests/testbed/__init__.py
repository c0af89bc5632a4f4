"""Local Debian 12 guests under QEMU that boot like DigitalOcean droplets.

    from tests.testbed import Cluster, make_ssh_key
    key = make_ssh_key(tmpdir)
    with Cluster(vpc_cidr="10.10.0.0/24") as c:
        a = c.add("a", user_data, ssh_user="admin", ssh_key=key)
        c.start().wait_for_ssh()
        print(a.ssh("hostname").stdout)

tests.testbed.image builds and caches the guest image; tests.testbed.vm boots guests.
"""

# Imported lazily so `python -m tests.testbed.image` does not import itself twice.
_EXPORTS = {
    "Image": "image",
    "build_image": "image",
    "cached_image": "image",
    "ensure_image": "image",
    "CloudInitStatus": "vm",
    "Cluster": "vm",
    "Guest": "vm",
    "GuestError": "vm",
    "SshKey": "vm",
    "SshResult": "vm",
    "VpcSwitch": "vm",
    "make_ssh_key": "vm",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name in _EXPORTS:
        import importlib

        return getattr(importlib.import_module(f".{_EXPORTS[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

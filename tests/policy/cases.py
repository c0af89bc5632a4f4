"""Passing and failing resources for every policy, shared by the tests of the
pure checks and of the policy objects.

Each case: (id, resource type, props, expected). `expected` is None for a
compliant (or not applicable) resource, otherwise a fragment every reported
message must contain. Props use the engine's camelCase names.
"""

from __future__ import annotations

import base64
import gzip

from tests.policy.harness import rules

UNKNOWN = rules.UNKNOWN
DROPLET, POOL, FIREWALL = rules.DROPLET, rules.DROPLET_AUTOSCALE, rules.FIREWALL
KEY, CA, HOST = rules.TLS_PRIVATE_KEY, rules.TLS_SELF_SIGNED_CERT, rules.TLS_LOCALLY_SIGNED_CERT
VPC = "digitalocean:index/vpc:Vpc"

CLOUD_CONFIG = "#cloud-config\npackages: [fail2ban]\n"
# Obviously fake material: the markers are what the check looks for.
PEM_KEY = "-----BEGIN OPENSSH PRIVATE KEY-----\nplaceholder\n-----END OPENSSH PRIVATE KEY-----\n"
PEM_B64 = base64.b64encode(PEM_KEY.encode()).decode()
PEM_GZ_B64 = base64.b64encode(gzip.compress(PEM_KEY.encode())).decode()
PUBLIC_KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAINIAjXC3tZADptcosZWOq69jsaFFaWTdwt5HoS6T5Ped admin@example.invalid"


def droplet(**props):
    return {"vpcUuid": "vpc-1", "sshKeys": ["aa:bb"], "monitoring": True, "userData": CLOUD_CONFIG, **props}


def without(props: dict, *keys: str) -> dict:
    return {k: v for k, v in props.items() if k not in keys}


def pool(**template):
    return {"dropletTemplate": {**droplet(), "withDropletAgent": True, **template}}


def rule(port_range="22", sources=("0.0.0.0/0",), protocol="tcp", **extra):
    r = {"protocol": protocol, "sourceAddresses": list(sources), **extra}
    if port_range is not None:
        r["portRange"] = port_range
    return {"inboundRules": [r]}


RESOURCE_CASES: dict[str, list[tuple]] = {
    "droplet-in-vpc": [
        ("in-vpc", DROPLET, droplet(), None),
        ("vpc-from-output", DROPLET, droplet(vpcUuid=UNKNOWN), None),
        ("pool-in-vpc", POOL, pool(), None),
        ("other-type", VPC, {}, None),
        ("no-vpc", DROPLET, without(droplet(), "vpcUuid"), "sets no vpcUuid"),
        ("empty-vpc", DROPLET, droplet(vpcUuid=""), "region's default VPC"),
        ("pool-no-vpc", POOL, {"dropletTemplate": without(droplet(), "vpcUuid")}, "sets no dropletTemplate.vpcUuid"),
    ],
    "droplet-ssh-keys": [
        ("keys", DROPLET, droplet(), None),
        ("keys-from-output", DROPLET, droplet(sshKeys=UNKNOWN), None),
        ("key-elements-from-output", DROPLET, droplet(sshKeys=[UNKNOWN]), None),
        ("pool-keys", POOL, pool(), None),
        ("no-keys", DROPLET, without(droplet(), "sshKeys"), "has no sshKeys"),
        ("empty-keys", DROPLET, droplet(sshKeys=[]), "root a password"),
        ("blank-key", DROPLET, droplet(sshKeys=[""]), "has no sshKeys"),
        ("pool-no-keys", POOL, pool(sshKeys=[]), "has no dropletTemplate.sshKeys"),
    ],
    "firewall-no-public-ssh": [
        ("ssh-from-admin-net", FIREWALL, rule(sources=["203.0.113.0/24"]), None),
        ("ssh-from-bastion-tag", FIREWALL, {"inboundRules": [{"protocol": "tcp", "portRange": "22", "sourceTags": ["bastion"]}]}, None),
        ("https-from-world", FIREWALL, rule("443", ["0.0.0.0/0", "::/0"]), None),
        ("udp-22-from-world", FIREWALL, rule(protocol="udp"), None),
        ("icmp-from-world", FIREWALL, rule(None, protocol="icmp"), None),
        ("deny-rule", FIREWALL, rule(action="deny"), None),
        ("range-below-22", FIREWALL, rule("1-21"), None),
        ("no-rules", FIREWALL, {"outboundRules": []}, None),
        ("ssh-22-v4-world", FIREWALL, rule("22", ["0.0.0.0/0"]), "includes port 22"),
        ("ssh-22-v6-world", FIREWALL, rule("22", ["::/0"]), "sourceAddresses include ::/0"),
        ("range-with-22", FIREWALL, rule("20-30"), "portRange '20-30'"),
        ("all-ports", FIREWALL, rule("1-65535", ["::/0"]), "opens SSH to the whole internet"),
        ("port-all", FIREWALL, rule("all"), "portRange 'all'"),
        ("tcp-without-port", FIREWALL, rule(None), "all ports"),
        ("two-halves", FIREWALL, rule("22", ["0.0.0.0/1", "128.0.0.0/1"]), "0.0.0.0/1, 128.0.0.0/1"),
        ("explicit-allow", FIREWALL, rule(action="allow"), "inboundRules[0]"),
    ],
    "droplet-monitoring": [
        ("on", DROPLET, droplet(), None),
        ("pool-agent-on", POOL, pool(), None),
        ("off", DROPLET, droplet(monitoring=False), "monitoring False"),
        ("unset", DROPLET, without(droplet(), "monitoring"), "monitoring unset (off by default)"),
        ("pool-agent-off", POOL, pool(withDropletAgent=False), "dropletTemplate.withDropletAgent False"),
    ],
    "droplet-user-data": [
        ("cloud-config", DROPLET, droplet(), None),
        ("public-key-only", DROPLET, droplet(userData=CLOUD_CONFIG + f"ssh_authorized_keys: [{PUBLIC_KEY}]\n"), None),
        ("wireguard-public-key", DROPLET, droplet(userData=CLOUD_CONFIG + "# PublicKey = abc\nPublicKey = abc\n"), None),
        (
            "harmless-base64",
            DROPLET,
            droplet(userData=CLOUD_CONFIG + "content: " + base64.b64encode(b"x" * 90).decode() + "\n"),
            None,
        ),
        ("no-user-data", DROPLET, without(droplet(), "userData"), "has no userData"),
        ("blank-user-data", DROPLET, droplet(userData="  \n"), "nothing hardens it"),
        ("pem-key", DROPLET, droplet(userData=CLOUD_CONFIG + PEM_KEY), '"PRIVATE KEY" block'),
        ("putty-key", DROPLET, droplet(userData="PuTTY-User-Key-File-3: ssh-ed25519\n"), "PuTTY"),
        (
            "wireguard-private-key",
            DROPLET,
            droplet(userData="[Interface]\nPrivateKey = placeholder\nListenPort = 51820\n"),
            'WireGuard "PrivateKey =" line',
        ),
        (
            "base64-write-files",
            DROPLET,
            droplet(userData=f"{CLOUD_CONFIG}write_files:\n  - path: /root/k\n    encoding: b64\n    content: {PEM_B64}\n"),
            "base64-encoded",
        ),
        (
            "gzip-base64-write-files",
            DROPLET,
            droplet(userData=f"{CLOUD_CONFIG}write_files:\n  - encoding: gz+b64\n    content: {PEM_GZ_B64}\n"),
            "gzip+base64-encoded",
        ),
        ("do-token", DROPLET, droplet(userData=CLOUD_CONFIG + "token: dop_v1_" + "0" * 64 + "\n"), "DigitalOcean API token"),
        ("too-big", DROPLET, droplet(userData=CLOUD_CONFIG + "#" * (64 * 1024)), "limit of 65536 bytes"),
        ("pool-wireguard-key", POOL, pool(userData="PrivateKey=abc\n"), "dropletTemplate.userData"),
    ],
    "tls-key-strength": [
        ("ed25519", KEY, {"algorithm": "ED25519"}, None),
        ("ecdsa-p256", KEY, {"algorithm": "ECDSA", "ecdsaCurve": "P256"}, None),
        ("ecdsa-p384", KEY, {"algorithm": "ECDSA", "ecdsaCurve": "P384"}, None),
        ("rsa-3072", KEY, {"algorithm": "RSA", "rsaBits": 3072}, None),
        ("rsa-4096-double", KEY, {"algorithm": "RSA", "rsaBits": 4096.0}, None),
        ("rsa-2048", KEY, {"algorithm": "RSA", "rsaBits": 2048}, "rsaBits 2048, fewer than 3072"),
        ("rsa-default", KEY, {"algorithm": "RSA"}, "unset, which means 2048"),
        ("ecdsa-p224", KEY, {"algorithm": "ECDSA", "ecdsaCurve": "P224"}, "ecdsaCurve 'P224'"),
        ("ecdsa-default", KEY, {"algorithm": "ECDSA"}, "unset, which means P224"),
        ("unknown-algorithm", KEY, {"algorithm": "DSA"}, "does not accept"),
    ],
    "tls-ca-certificate": [
        ("ten-years", CA, {"isCaCertificate": True, "validityPeriodHours": 87600, "allowedUses": ["cert_signing", "crl_signing"]}, None),
        ("leaf-self-signed", CA, {"validityPeriodHours": 200000, "allowedUses": ["server_auth"]}, None),
        ("intermediate-ok", HOST, {"isCaCertificate": True, "validityPeriodHours": 43800, "allowedUses": ["cert_signing"]}, None),
        ("twenty-years", CA, {"isCaCertificate": True, "validityPeriodHours": 175200, "allowedUses": ["cert_signing"]}, "175200 hours"),
        ("cannot-sign", CA, {"isCaCertificate": True, "validityPeriodHours": 8760, "allowedUses": ["digital_signature"]}, 'without "cert_signing"'),
        ("no-uses", CA, {"isCaCertificate": True, "validityPeriodHours": 8760}, "allowedUses (none)"),
        ("no-validity", CA, {"isCaCertificate": True, "allowedUses": ["cert_signing"]}, "sets no validityPeriodHours"),
        ("intermediate-too-long", HOST, {"isCaCertificate": True, "validityPeriodHours": 100000, "allowedUses": ["cert_signing"]}, "CA certificate"),
    ],
    "tls-host-certificate": [
        ("ninety-days", HOST, {"validityPeriodHours": 2160, "earlyRenewalHours": 720}, None),
        ("short", HOST, {"validityPeriodHours": 24, "earlyRenewalHours": 8}, None),
        ("intermediate-ca", HOST, {"isCaCertificate": True, "validityPeriodHours": 43800}, None),
        ("self-signed-ca", CA, {"isCaCertificate": True, "validityPeriodHours": 8760}, None),
        ("one-year", HOST, {"validityPeriodHours": 8760, "earlyRenewalHours": 720}, "longer than the 2160 hours (90 days)"),
        ("no-early-renewal", HOST, {"validityPeriodHours": 2160}, "earlyRenewalHours unset (0)"),
        ("zero-early-renewal", HOST, {"validityPeriodHours": 2160, "earlyRenewalHours": 0}, "earlyRenewalHours 0"),
        ("renew-always", HOST, {"validityPeriodHours": 720, "earlyRenewalHours": 720}, "every update replaces it"),
    ],
}

# Cases whose outcome an unknown value decides: the check must defer
# (rules.Undecidable; pulumi-policy's UnknownValueError through the policy).
UNDECIDABLE_CASES: dict[str, list[tuple]] = {
    "droplet-monitoring": [("monitoring-unknown", DROPLET, droplet(monitoring=UNKNOWN))],
    "droplet-user-data": [("user-data-unknown", DROPLET, droplet(userData=UNKNOWN))],
    "firewall-no-public-ssh": [
        ("sources-unknown", FIREWALL, rule(sources=[UNKNOWN])),
        ("rules-unknown", FIREWALL, {"inboundRules": UNKNOWN}),
        ("port-unknown", FIREWALL, rule(port_range=UNKNOWN)),
    ],
    "tls-key-strength": [("bits-unknown", KEY, {"algorithm": "RSA", "rsaBits": UNKNOWN})],
    "tls-ca-certificate": [("validity-unknown", CA, {"isCaCertificate": True, "validityPeriodHours": UNKNOWN, "allowedUses": ["cert_signing"]})],
    "tls-host-certificate": [("is-ca-unknown", HOST, {"isCaCertificate": UNKNOWN, "validityPeriodHours": 2160, "earlyRenewalHours": 720})],
}


def _res(type_, name, props, **extra):
    return {"type": type_, "name": name, "urn": f"urn:pulumi:test::hardened-do::{type_}::{name}", "props": props, **extra}


def _fw(name, **props):
    return _res(FIREWALL, name, props)


WEB = _res(DROPLET, "web", {"tags": ["web"], "id": "101"})

# (id, resources, config, {resource name: expected fragment}); an empty dict
# means no violation.
STACK_CASES: list[tuple] = [
    ("tag-attached", [WEB, _fw("fw-web", tags=["web"])], None, {}),
    ("one-of-several-tags", [_res(DROPLET, "web", {"tags": ["env-dev", "web"]}), _fw("fw", tags=["web"])], None, {}),
    ("listed-by-id", [WEB, _fw("fw", dropletIds=[101])], None, {}),
    (
        "listed-by-id-during-preview",
        [WEB, {**_fw("fw", dropletIds=[UNKNOWN]), "property_dependencies": {"dropletIds": [WEB["urn"]]}}],
        None,
        {},
    ),
    ("external-firewall-tag", [WEB], {"externalFirewallTags": ["web"]}, {}),
    ("pool-tag-attached", [_res(POOL, "pool", {"dropletTemplate": {"tags": ["web"]}}), _fw("fw", tags=["web"])], None, {}),
    ("no-droplets", [_fw("fw", tags=["web"])], None, {}),
    ("no-firewall", [WEB], None, {"web": "firewall tags in this stack: none"}),
    ("tag-mismatch", [WEB, _fw("fw-admin", tags=["admin"])], None, {"web": "its tags (web) match no"}),
    ("untagged", [_res(DROPLET, "bare", {}), _fw("fw", tags=["web"])], None, {"bare": "its tags (none)"}),
    ("other-droplet-listed", [WEB, _fw("fw", dropletIds=[202])], None, {"web": "not covered by any cloud firewall"}),
    (
        "pool-not-covered",
        [_res(POOL, "pool", {"dropletTemplate": {"tags": ["pool"]}}), _fw("fw", tags=["web"])],
        None,
        {"pool": "droplet autoscale pool 'pool'"},
    ),
    (
        "only-the-uncovered-one",
        [WEB, _res(DROPLET, "db", {"tags": ["db"]}), _fw("fw", tags=["web"])],
        None,
        {"db": "droplet 'db'"},
    ),
]

STACK_UNDECIDABLE_CASES: list[tuple] = [
    ("firewall-tags-unknown", [WEB, _fw("fw", tags=[UNKNOWN])]),
    ("droplet-tags-unknown", [_res(DROPLET, "web", {"tags": UNKNOWN}), _fw("fw", tags=["web"])]),
    ("droplet-ids-from-elsewhere", [WEB, _fw("fw", dropletIds=UNKNOWN)]),
]


def flat(cases: dict[str, list[tuple]]) -> list:
    import pytest

    return [pytest.param(policy, *case[1:], id=f"{policy}:{case[0]}") for policy, items in cases.items() for case in items]

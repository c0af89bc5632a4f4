"""Everything the baseline forbids, once each: the policy pack's negative fixture.

    cd tests/policy/insecure && pulumi preview --stack insecure --policy-pack ../../../policy

must fail with a violation of every policy. The tests run this program under
the offline mock engine and feed what it plans to the policies.

Config is read from the `insecure:` namespace rather than the project's, so
the stack file works under this project name and under the mock engine
(which runs every program as project "hardened-do").
"""

import pulumi
import pulumi_digitalocean as do
import pulumi_tls as tls

# Never create these resources: the program exists to be previewed.
if not pulumi.runtime.is_dry_run():
    raise pulumi.RunError("insecure example: preview only, never deploy it")

config = pulumi.Config("insecure")
region = config.get("region") or "nyc3"
image = config.get("image") or "ubuntu-24-04-x64"
size = config.get("size") or "s-1vcpu-1gb"

# A private key baked into user_data; the body is a placeholder, the header is
# what gives it away.
LEAKY_USER_DATA = """#cloud-config
write_files:
  - path: /root/.ssh/id_ed25519
    permissions: "0600"
    content: |
      -----BEGIN OPENSSH PRIVATE KEY-----
      placeholder, not a key
      -----END OPENSSH PRIVATE KEY-----
"""

WIREGUARD_USER_DATA = """#cloud-config
write_files:
  - path: /etc/wireguard/wg0.conf
    content: |
      [Interface]
      PrivateKey = placeholder-not-a-key
      ListenPort = 51820
"""

# Tagged "insecure-web", but the firewall below attaches to "insecure-admin":
# no firewall covers it. No vpc_uuid, no ssh_keys, monitoring off.
droplet = do.Droplet(
    "insecure-droplet",
    name="insecure-1",
    region=region,
    image=image,
    size=size,
    tags=["insecure-web"],
    user_data=LEAKY_USER_DATA,
    monitoring=False,
)

# An autoscale pool whose template has the same gaps.
pool = do.DropletAutoscale(
    "insecure-pool",
    name="insecure-pool",
    config=do.DropletAutoscaleConfigArgs(min_instances=1, max_instances=3, target_cpu_utilization=0.5),
    droplet_template=do.DropletAutoscaleDropletTemplateArgs(
        region=region,
        image=image,
        size=size,
        ssh_keys=[],
        tags=["insecure-pool"],
        user_data=WIREGUARD_USER_DATA,
    ),
)

firewall = do.Firewall(
    "insecure-firewall",
    name="insecure-admin",
    tags=["insecure-admin"],
    inbound_rules=[
        do.FirewallInboundRuleArgs(
            protocol="tcp", port_range="22", source_addresses=["0.0.0.0/0", "::/0"]
        ),
    ],
)

ca_key = tls.PrivateKey("insecure-ca-key", algorithm="RSA", rsa_bits=2048)

# Twenty years, and not allowed to sign certificates.
ca_cert = tls.SelfSignedCert(
    "insecure-ca-cert",
    private_key_pem=ca_key.private_key_pem,
    is_ca_certificate=True,
    validity_period_hours=20 * 8760,
    allowed_uses=["digital_signature"],
    subject=tls.SelfSignedCertSubjectArgs(common_name="insecure example CA"),
)

# A year-long host certificate that is never renewed early.
host_cert = tls.LocallySignedCert(
    "insecure-host-cert",
    cert_request_pem="-----BEGIN CERTIFICATE REQUEST-----\nplaceholder\n-----END CERTIFICATE REQUEST-----\n",
    ca_private_key_pem=ca_key.private_key_pem,
    ca_cert_pem=ca_cert.cert_pem,
    validity_period_hours=8760,
    allowed_uses=["server_auth", "digital_signature"],
)

pulumi.export("droplet", droplet.name)

"""Parsing and strength checks for OpenSSH public keys (pure, no Pulumi).

The config layer uses this to refuse weak or malformed admin keys before any
resource exists. Error messages never contain the key material: a pasted
private key must not end up in a terminal log or a CI transcript.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import struct
from dataclasses import dataclass

# Minimum RSA modulus size: NIST SP 800-57 puts 2048-bit RSA at 112-bit
# security (acceptable until 2030); 3072 bits gives 128-bit security, the level
# of the other accepted key types.
MIN_RSA_BITS = 3072

ACCEPTED_TYPES = (
    "ssh-ed25519",
    "sk-ssh-ed25519@openssh.com",
    "ecdsa-sha2-nistp256",
    "ecdsa-sha2-nistp384",
    "ecdsa-sha2-nistp521",
    "sk-ecdsa-sha2-nistp256@openssh.com",
    "ssh-rsa",
)

_PRIVATE_MARKERS = (
    "PRIVATE KEY",  # -----BEGIN OPENSSH/RSA/EC/DSA PRIVATE KEY-----, PKCS#8
    "PuTTY-User-Key-File",
    "ENCRYPTED PRIVATE",
)


class SshKeyError(ValueError):
    """A public key was refused. The message never includes the key."""


@dataclass(frozen=True)
class SshPublicKey:
    key_type: str
    blob: bytes
    comment: str
    bits: int | None

    @property
    def openssh(self) -> str:
        """The canonical one-line form (type, base64 blob, comment)."""
        body = f"{self.key_type} {base64.b64encode(self.blob).decode()}"
        return f"{body} {self.comment}".rstrip()

    @property
    def fingerprint_sha256(self) -> str:
        digest = hashlib.sha256(self.blob).digest()
        return "SHA256:" + base64.b64encode(digest).decode().rstrip("=")


PRIVATE_KEY_MESSAGE = (
    "this is a PRIVATE key (the value is not shown). Remove it from the stack config, "
    "treat it as leaked, and paste the public half instead (the .pub file, e.g. "
    "`ssh-keygen -y -f KEYFILE`)"
)


def looks_like_private_key(text: str) -> bool:
    return any(marker in text for marker in _PRIVATE_MARKERS)


def _read_string(blob: bytes, offset: int) -> tuple[bytes, int]:
    if offset + 4 > len(blob):
        raise SshKeyError("the key data is truncated; copy the whole line of the .pub file")
    (length,) = struct.unpack(">I", blob[offset : offset + 4])
    start = offset + 4
    end = start + length
    if end > len(blob):
        raise SshKeyError("the key data is truncated; copy the whole line of the .pub file")
    return blob[start:end], end


def _rsa_bits(blob: bytes) -> int:
    _, offset = _read_string(blob, 0)
    _exponent, offset = _read_string(blob, offset)
    modulus, _ = _read_string(blob, offset)
    return int.from_bytes(modulus, "big").bit_length()


def parse_public_key(text: object) -> SshPublicKey:
    """Parse one OpenSSH public key line and check that it is strong enough."""
    if not isinstance(text, str):
        raise SshKeyError("expected an OpenSSH public key as a string")
    if looks_like_private_key(text):
        raise SshKeyError(PRIVATE_KEY_MESSAGE)
    fields = text.strip().split(None, 2)
    if len(fields) < 2:
        raise SshKeyError(
            "not an OpenSSH public key: expected '<type> <base64> [comment]' "
            "as in an id_ed25519.pub file"
        )
    key_type, b64 = fields[0], fields[1]
    comment = fields[2] if len(fields) > 2 else ""
    if key_type in ("ssh-dss", "ssh-dsa"):
        raise SshKeyError(
            "DSA keys are refused (1024-bit, removed from OpenSSH 9.8); "
            "generate one with `ssh-keygen -t ed25519`"
        )
    if key_type not in ACCEPTED_TYPES:
        raise SshKeyError(
            f"unsupported key type {key_type[:40]!r}; use ssh-ed25519 "
            f"(or ecdsa-sha2-nistp256/384/521, or ssh-rsa of at least {MIN_RSA_BITS} bits)"
        )
    try:
        blob = base64.b64decode(b64, validate=True)
    except (binascii.Error, ValueError):
        raise SshKeyError("the base64 part of the key does not decode") from None
    embedded_type, _ = _read_string(blob, 0)
    if embedded_type.decode("ascii", "replace") != key_type:
        raise SshKeyError(
            "the key type prefix does not match the key data (copy the whole .pub line)"
        )
    bits: int | None = None
    if key_type == "ssh-rsa":
        bits = _rsa_bits(blob)
        if bits < MIN_RSA_BITS:
            raise SshKeyError(
                f"RSA key of {bits} bits is too weak; at least {MIN_RSA_BITS} bits "
                "are required. Prefer `ssh-keygen -t ed25519`"
            )
    elif key_type == "ssh-ed25519":
        body, _ = _read_string(blob, _read_string(blob, 0)[1])
        if len(body) != 32:
            raise SshKeyError("the ed25519 key data has the wrong length")
        bits = 256
    return SshPublicKey(key_type=key_type, blob=blob, comment=comment, bits=bits)

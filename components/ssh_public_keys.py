"""Parsing and strength checks for OpenSSH public keys (pure, no Pulumi).

The key itself is decoded by `cryptography`'s OpenSSH loader, which knows
every key type, checks that an ECDSA curve name matches its point, refuses
trailing data and truncated blobs. This module adds the policy on top: one
key per line, no DSA, RSA of at least 3072 bits, and a comment that is plain
printable text.

Error messages never contain any part of the value: a pasted private key
(armoured or not) must not end up in a terminal log or a CI transcript, and a
string that is not a key may well be one.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
import warnings
from dataclasses import dataclass

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import dsa, ec, ed25519, rsa

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
_DSA_TYPES = ("ssh-dss", "ssh-dsa")

_PRIVATE_MARKERS = (
    "PRIVATE KEY",  # -----BEGIN OPENSSH/RSA/EC/DSA PRIVATE KEY-----, PKCS#8
    "PuTTY-User-Key-File",
    "ENCRYPTED PRIVATE",
    "b3BlbnNzaC1rZXktdjE",  # base64 of "openssh-key-v1", the private key format
)
# A run of base64 long enough to hold a private scalar, anywhere in the value.
_B64_RUN = re.compile(r"[A-Za-z0-9+/=]{40,}")

# A comment is free text for humans: printable, no control characters. It
# ends up in authorized_keys and in a DigitalOcean key name.
_COMMENT = re.compile(r"[\x20-\x7e]{0,200}")


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


def _der_private_key(data: bytes) -> bool:
    try:
        serialization.load_der_private_key(data, password=None)
        return True
    except TypeError:  # encrypted: still a private key
        return True
    except (ValueError, UnsupportedAlgorithm):
        return False


def looks_like_private_key(text: str) -> bool:
    """Armoured private keys, and DER private keys pasted without their armour."""
    if any(marker in text for marker in _PRIVATE_MARKERS):
        return True
    # The body of a PEM private key without the BEGIN/END lines: base64 DER,
    # possibly wrapped. Joined, it must not parse as a private key.
    joined = "".join(text.split())
    candidates = [joined] + _B64_RUN.findall(text)
    for candidate in candidates:
        if len(candidate) < 40:
            continue
        try:
            data = base64.b64decode(candidate + "=" * (-len(candidate) % 4), validate=True)
        except (binascii.Error, ValueError):
            continue
        if data[:1] == b"\x30" and _der_private_key(data):
            return True
    return False


def _bits(key: object) -> int | None:
    if isinstance(key, rsa.RSAPublicKey):
        return key.key_size
    if isinstance(key, ec.EllipticCurvePublicKey):
        return key.curve.key_size
    if isinstance(key, ed25519.Ed25519PublicKey):
        return 256
    return None


def parse_public_key(text: object) -> SshPublicKey:
    """Parse one OpenSSH public key line and check that it is strong enough."""
    if not isinstance(text, str):
        raise SshKeyError("expected an OpenSSH public key as a string")
    if looks_like_private_key(text):
        raise SshKeyError(PRIVATE_KEY_MESSAGE)
    stripped = text.strip(" \t")
    if any(ch in stripped for ch in "\r\n"):
        # A second line would be a second, unvalidated authorized_keys entry.
        raise SshKeyError(
            "holds more than one line; give each key as its own list entry, one line each"
        )
    fields = stripped.split(None, 2)
    if len(fields) < 2:
        raise SshKeyError(
            "not an OpenSSH public key: expected '<type> <base64> [comment]' "
            "as in an id_ed25519.pub file"
        )
    key_type, b64 = fields[0], fields[1]
    comment = fields[2].strip() if len(fields) > 2 else ""
    if key_type in _DSA_TYPES:
        raise SshKeyError(
            "DSA keys are refused (1024-bit, removed from OpenSSH 9.8); "
            "generate one with `ssh-keygen -t ed25519`"
        )
    if key_type not in ACCEPTED_TYPES:
        # The field is not echoed: it could be anything, a secret included.
        raise SshKeyError(
            "unsupported key type; use ssh-ed25519 "
            f"(or ecdsa-sha2-nistp256/384/521, or ssh-rsa of at least {MIN_RSA_BITS} bits)"
        )
    if not _COMMENT.fullmatch(comment):
        raise SshKeyError(
            "the comment after the key must be printable ASCII without control "
            "characters, at most 200 characters"
        )
    try:
        blob = base64.b64decode(b64, validate=True)
    except (binascii.Error, ValueError):
        raise SshKeyError("the base64 part of the key does not decode") from None
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # cryptography's DSA deprecation
            key = serialization.load_ssh_public_key(f"{key_type} {b64}".encode())
    except UnsupportedAlgorithm:
        raise SshKeyError("unsupported key type inside the key data") from None
    except ValueError as exc:
        if "mismatch" in str(exc).lower() and "curve" not in str(exc).lower():
            raise SshKeyError(
                "the key type prefix does not match the key data (copy the whole .pub line)"
            ) from None
        raise SshKeyError(
            "the key data is not a valid OpenSSH public key (truncated, corrupt, or its "
            "curve does not match its type); copy the whole line of the .pub file"
        ) from None
    if isinstance(key, dsa.DSAPublicKey):
        raise SshKeyError(
            "DSA keys are refused (1024-bit, removed from OpenSSH 9.8); "
            "generate one with `ssh-keygen -t ed25519`"
        )
    bits = _bits(key)
    if isinstance(key, rsa.RSAPublicKey) and key.key_size < MIN_RSA_BITS:
        raise SshKeyError(
            f"RSA key of {key.key_size} bits is too weak; at least {MIN_RSA_BITS} bits "
            "are required. Prefer `ssh-keygen -t ed25519`"
        )
    return SshPublicKey(key_type=key_type, blob=blob, comment=comment, bits=bits)

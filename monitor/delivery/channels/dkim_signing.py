"""DKIM signatures (RFC 6376) on outgoing mail, made by dkimpy: the key is read and proven once,
each message is signed as it leaves.

The key is an RSA key (PEM, PKCS#1 or PKCS#8: ``openssl genpkey -algorithm RSA -pkeyopt
rsa_keygen_bits:2048``), signed ``rsa-sha256``, or an Ed25519 key (PEM, ``openssl genpkey
-algorithm ed25519``, or dkimpy's ``dknewkey --ktype ed25519`` file), signed
``ed25519-sha256`` (RFC 8463). No error raised here quotes any part of the key.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

import dkim
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import Prehashed
from cryptography.hazmat.primitives.serialization import load_pem_private_key
from dkim.crypto import UnparsableKeyError, parse_private_key

Algorithm = Literal["rsa-sha256", "ed25519-sha256"]

KEY_VARIABLE = "MONITOR_DKIM_KEY"
MIN_RSA_BITS = 1024  # what dkimpy, and receivers, accept at all; 2048 is the usual size
# Headers relaxed (a relay that refolds one does not break the signature); the body simple:
# ours is quoted-printable, short lines without trailing space, which relays leave alone, and
# relaxed would cost a third more of the signing (dkimpy's default pair).
_CANONICALIZE = (b"relaxed", b"simple")
# RFC 8410: an Ed25519 key in PKCS#8 is this prefix and the 32-byte seed.
_ED25519_PKCS8 = bytes.fromhex("302e020100300506032b657004220420")
_PEM = re.compile(r"-----BEGIN ([A-Z0-9 ]+)-----\n(.*?)\n-----END \1-----", re.DOTALL)
_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
_DNS_NAME = re.compile(rf"{_LABEL}(?:\.{_LABEL})*")


@dataclass(frozen=True)
class DkimKey:
    """A private key as dkimpy takes it: PEM for RSA, the base64 seed for Ed25519."""

    algorithm: Algorithm
    bits: int
    material: bytes = field(repr=False)


def parse_key(text: str) -> DkimKey:
    """The key in ``text``; ValueError saying what is wrong with it (never quoting it).

    A PEM whose line breaks were written ``\\n`` (an environment variable set on one line) is
    read as if they were line breaks."""
    text = text.strip().replace("\r\n", "\n")
    if "\n" not in text and "\\n" in text:
        text = text.replace("\\n", "\n")
    found = _PEM.fullmatch(text)
    if found is None:
        seed = _base64(text)
        if seed is not None and len(seed) == 32:  # dknewkey's Ed25519 file: the bare seed
            return DkimKey("ed25519-sha256", 256, base64.b64encode(seed))
        raise ValueError("is not a PEM private key (-----BEGIN PRIVATE KEY----- ...)")
    label, body = found.groups()
    if "ENCRYPTED" in label:
        raise ValueError(
            "is encrypted: the monitor cannot ask for its passphrase; write it unencrypted "
            "(openssl pkey -in KEY -out PLAIN) and keep that file or variable secret"
        )
    der = _base64(body)
    if der is None:
        raise ValueError(f"is not a PEM private key: its {label} block is not base64")
    if label == "PRIVATE KEY" and len(der) == 48 and der.startswith(_ED25519_PKCS8):
        return DkimKey("ed25519-sha256", 256, base64.b64encode(der[len(_ED25519_PKCS8) :]))
    if label not in ("PRIVATE KEY", "RSA PRIVATE KEY"):
        raise ValueError(f"is a {label}, not an RSA or Ed25519 private key")
    try:
        bits = int(parse_private_key(der)["modulus"]).bit_length()
    except (UnparsableKeyError, IndexError, TypeError, ValueError):
        raise ValueError("is neither an RSA nor an Ed25519 private key") from None
    if bits < MIN_RSA_BITS:
        raise ValueError(f"is a {bits}-bit RSA key: receivers refuse fewer than {MIN_RSA_BITS}")
    # dkimpy finds the key between the armour lines by "\n"; written anew, any line breaks do.
    lines = "\n".join(re.findall(".{1,64}", base64.b64encode(der).decode()))
    pem = f"-----BEGIN {label}-----\n{lines}\n-----END {label}-----\n"
    return DkimKey("rsa-sha256", bits, pem.encode())


def _base64(text: str) -> bytes | None:
    try:
        return base64.b64decode("".join(text.split()), validate=True)
    except (binascii.Error, ValueError):
        return None


def check_dns_name(name: str) -> bool:
    """Whether ``name`` is a DNS name: labels of letters, digits and inner hyphens."""
    return bool(_DNS_NAME.fullmatch(name)) and len(name) <= 253


# dkimpy makes an RSA signature with Python's own big integers: ~6 ms a message, 10 minutes of
# CPU for a 100,000-person fan-out. OpenSSL (through cryptography) makes the same signature
# (PKCS#1 v1.5 is deterministic: byte for byte the same) in ~0.2 ms. dkimpy looks the step up
# in its module at each signature and has no other way in, so it is replaced there: for the
# keys this module loaded it goes to OpenSSL, for any other key to dkimpy's own.
_OPENSSL_KEYS: dict[int, rsa.RSAPrivateKey] = {}  # by modulus
_HASHES: dict[str, hashes.HashAlgorithm] = {"sha256": hashes.SHA256(), "sha1": hashes.SHA1()}
_dkimpy_rsa_sign = dkim.RSASSA_PKCS1_v1_5_sign


def _rsa_sign(digest: object, private_key: dict[str, int]) -> bytes:
    """dkimpy's ``RSASSA_PKCS1_v1_5_sign(hash, private_key)``, made by OpenSSL for our keys."""
    key = _OPENSSL_KEYS.get(private_key["modulus"])
    algorithm = _HASHES.get(str(getattr(digest, "name", "")).lower())
    if key is None or algorithm is None:
        signature: bytes = _dkimpy_rsa_sign(digest, private_key)
        return signature
    return key.sign(digest.digest(), padding.PKCS1v15(), Prehashed(algorithm))  # type: ignore[attr-defined]


dkim.RSASSA_PKCS1_v1_5_sign = _rsa_sign


def _use_openssl(key: DkimKey) -> None:
    """Sign with ``key`` through OpenSSL from now on (an RSA key; others are left to dkimpy)."""
    if key.algorithm != "rsa-sha256":
        return
    loaded = load_pem_private_key(key.material, password=None)
    if isinstance(loaded, rsa.RSAPrivateKey):
        _OPENSSL_KEYS[loaded.private_numbers().public_numbers.n] = loaded


class DkimSigner:
    """Signs messages for ``domain`` with ``key``, published at ``selector._domainkey.domain``.

    ``sign`` covers the header fields named (each named once more than it occurs, so none can
    be added without breaking the signature) and the body. Raises ValueError when the key
    cannot sign at all: it is tried on a sample message here, so a key that parses but cannot
    sign is refused at start, never found out message by message.
    """

    def __init__(self, key: DkimKey, selector: str, domain: str) -> None:
        self.algorithm = key.algorithm
        self.bits = key.bits
        for name, what in ((selector, "selector"), (domain, "signing domain")):
            if not check_dns_name(name):
                raise ValueError(f"the {what} {name!r} is not a DNS name")
        self.selector = selector
        self.domain = domain
        self._key = key.material
        self._selector = selector.encode("ascii")
        self._domain = domain.encode("ascii")
        self._algorithm = key.algorithm.encode("ascii")
        _use_openssl(key)
        try:
            self.sign(b"From: a@" + self._domain + b"\r\n\r\nkey check\r\n", ("From",))
        except dkim.DKIMException:
            raise ValueError(f"cannot sign with this {key.algorithm} key") from None

    def __repr__(self) -> str:
        return (
            f"DkimSigner(selector={self.selector!r}, domain={self.domain!r}, "
            f"algorithm={self.algorithm!r}, bits={self.bits})"
        )

    def sign(self, message: bytes, headers: Sequence[str]) -> bytes:
        """``message`` (CRLF line ends) with its ``DKIM-Signature`` header first. Raises
        dkim.DKIMException when dkimpy cannot sign it."""
        names = [name.lower().encode("ascii") for name in headers]
        signature: bytes = dkim.DKIM(message, signature_algorithm=self._algorithm).sign(
            self._selector,
            self._domain,
            self._key,
            canonicalize=_CANONICALIZE,
            include_headers=[*names, *dict.fromkeys(names)],
        )
        return signature + message

"""Local key sources: a JWKS dict, a PEM public key, an HMAC secret.

A key source is anything with ``async keyset(kid) -> KeySet``; the verifier asks
it for the keys that may check a token with that ``kid``. Local sources answer
from memory; :class:`partydeco.auth.RemoteJWKS` fetches and caches.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from typing import Any, Protocol, runtime_checkable

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519, rsa
from joserfc.errors import JoseError, SecurityWarning
from joserfc.jwk import ECKey, JWKRegistry, KeyParameters, KeySet, OctKey, OKPKey, RSAKey

__all__ = [
    "Key",
    "KeySource",
    "LocalKeys",
    "RotatingKeySource",
    "hmac_key",
    "import_jwks",
    "load_pem_public_key",
]

#: Smallest and largest RSA modulus accepted, in bits. Smaller keys are weak;
#: larger ones make every verification slow (a cheap DoS by a hostile JWKS).
RSA_MIN_BITS = 2048
RSA_MAX_BITS = 8192
#: Curves accepted for EC and OKP signing keys.
EC_CURVES = frozenset({"P-256", "P-384", "P-521", "secp256k1"})
OKP_CURVES = frozenset({"Ed25519", "Ed448"})
#: JWK members that only a private or symmetric key has.
PRIVATE_MEMBERS = frozenset({"d", "p", "q", "dp", "dq", "qi", "oth", "k"})
#: Shortest HMAC secret accepted (RFC 7518 section 3.2: at least the hash size; 32 bytes for HS256).
HMAC_MIN_BYTES = 32

Key = RSAKey | ECKey | OKPKey | OctKey


class KeySource(Protocol):
    """Where a verifier gets its keys.

    ``symmetric`` is True only for HMAC secrets; the verifier refuses HS*
    algorithms with any other source, so a public key is never used as a secret.
    """

    @property
    def symmetric(self) -> bool:
        """True when the keys are HMAC secrets."""
        ...

    async def keyset(self, kid: str | None) -> KeySet:
        """Return the keys that may verify a token whose header has this ``kid``."""
        ...


@runtime_checkable
class RotatingKeySource(KeySource, Protocol):
    """A key source whose keys change over time, such as :class:`RemoteJWKS`.

    A verifier that caches results uses these members to make sure a cached
    token never outlives the key that verified it.
    """

    @property
    def generation(self) -> int:
        """A number that changes whenever a key is added, removed or replaced."""
        ...

    @property
    def fresh_until(self) -> float:
        """The ``time.monotonic()`` instant from which ``keyset()`` may fetch the keys again.

        A verifier keeps no cached result past it, so that the next verification
        gives the source the chance to refresh.
        """
        ...

    def holds(self, key: Key) -> bool:
        """True while ``key`` (a key ``keyset()`` returned) is still one of the current keys."""
        ...


class LocalKeys:
    """A fixed key set held in memory (no network).

    Example::

        keys = LocalKeys(import_jwks(jwks_dict))
        keys = LocalKeys.from_pem(pem_text)
    """

    def __init__(self, keyset: KeySet, *, symmetric: bool = False) -> None:
        kinds = {key.key_type for key in keyset.keys}
        if symmetric and kinds != {"oct"}:
            raise ValueError("a symmetric key source may hold only HMAC (oct) keys")
        if not symmetric and "oct" in kinds:
            raise ValueError(
                "HMAC (oct) keys need LocalKeys.from_secret(), not a public key source"
            )
        self._keyset = keyset
        self._symmetric = symmetric

    @property
    def symmetric(self) -> bool:
        """True when the keys are HMAC secrets."""
        return self._symmetric

    async def keyset(self, kid: str | None) -> KeySet:
        """Return the fixed key set (``kid`` selection happens during verification)."""
        return self._keyset

    @classmethod
    def from_jwks(cls, jwks: Mapping[str, Any]) -> LocalKeys:
        """Use the public signing keys of a JWKS dict; private members are dropped."""
        return cls(import_jwks(jwks, allow_private=True))

    @classmethod
    def from_pem(cls, pem: str | bytes, *, kid: str | None = None) -> LocalKeys:
        """Use one PEM public key (a private key's public half is taken if given)."""
        return cls(KeySet([load_pem_public_key(pem, kid=kid)]))

    @classmethod
    def from_secret(cls, secret: str | bytes, *, kid: str | None = None) -> LocalKeys:
        """Use an HMAC shared secret (HS256/384/512)."""
        return cls(KeySet([hmac_key(secret, kid=kid)]), symmetric=True)


def _usable_jwk(data: object) -> bool:
    """Cheap shape checks on one JWK dict before joserfc imports it."""
    if not isinstance(data, dict):
        return False
    kty = data.get("kty")
    if kty not in ("RSA", "EC", "OKP"):
        return False
    if data.get("use") not in (None, "sig"):
        return False
    key_ops = data.get("key_ops")
    if key_ops is not None and (not isinstance(key_ops, list) or "verify" not in key_ops):
        return False
    kid = data.get("kid")
    if kid is not None and not isinstance(kid, str):
        return False
    if kty == "EC":
        return data.get("crv") in EC_CURVES
    if kty == "OKP":
        return data.get("crv") in OKP_CURVES
    return True


def _acceptable_key(key: Key) -> bool:
    """Checks that need the parsed key (RSA modulus size)."""
    if isinstance(key, RSAKey):
        raw = key.raw_value
        bits = raw.key_size
        return RSA_MIN_BITS <= bits <= RSA_MAX_BITS
    return True


def import_jwks(jwks: Mapping[str, Any], *, allow_private: bool = False) -> KeySet:
    """Import the public signing keys of a JWKS dict.

    Keys of an unsupported type or curve, encryption keys, RSA keys outside
    2048-8192 bits, and keys that fail to parse are skipped. A key with private
    members is skipped, or reduced to its public half when ``allow_private``.

    Raises:
        ValueError: when no usable key is left.
    """
    entries = jwks.get("keys")
    if not isinstance(entries, list):
        raise ValueError("a JWKS must be an object with a 'keys' list")
    keys: list[Key] = []
    for data in entries:
        if not _usable_jwk(data):
            continue
        if PRIVATE_MEMBERS.intersection(data):
            if not allow_private:
                continue
            data = {name: value for name, value in data.items() if name not in PRIVATE_MEMBERS}
        try:
            with warnings.catch_warnings():
                # weak keys are refused below; joserfc's warning about them is noise here
                warnings.simplefilter("ignore", SecurityWarning)
                key = JWKRegistry.import_key(data)
        except (JoseError, ValueError, TypeError):
            continue
        if isinstance(key, OctKey) or key.is_private or not _acceptable_key(key):
            continue
        key.ensure_kid()
        keys.append(key)
    if not keys:
        raise ValueError("the JWKS holds no usable public signing key")
    return KeySet(keys)


def load_pem_public_key(pem: str | bytes, *, kid: str | None = None) -> Key:
    """Load an RSA, EC or Ed25519/Ed448 public key from PEM.

    A private key is accepted and only its public half is kept.

    Raises:
        ValueError: when the PEM is not such a key.
    """
    data = pem.encode() if isinstance(pem, str) else pem
    public: Any
    try:
        public = serialization.load_pem_public_key(data)
    except (ValueError, TypeError):
        try:
            public = serialization.load_pem_private_key(data, password=None).public_key()
        except (ValueError, TypeError) as error:
            raise ValueError("not a PEM public key") from error
    spki = public.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    parameters: KeyParameters | None = {"kid": kid} if kid else None
    key: Key
    if isinstance(public, rsa.RSAPublicKey):
        key = RSAKey.import_key(spki, parameters)
    elif isinstance(public, ec.EllipticCurvePublicKey):
        key = ECKey.import_key(spki, parameters)
    elif isinstance(public, ed25519.Ed25519PublicKey | ed448.Ed448PublicKey):
        key = OKPKey.import_key(spki, parameters)
    else:
        raise ValueError("unsupported PEM key type (use RSA, EC, Ed25519 or Ed448)")
    if not _acceptable_key(key):
        raise ValueError(f"RSA keys must have {RSA_MIN_BITS}-{RSA_MAX_BITS} bits")
    key.ensure_kid()
    return key


def hmac_key(secret: str | bytes, *, kid: str | None = None) -> OctKey:
    """Build an HMAC key from a shared secret of at least 32 bytes.

    Raises:
        ValueError: when the secret is short or looks like a PEM/SSH public key
            (an asymmetric key must never serve as an HMAC secret).
    """
    data = secret.encode() if isinstance(secret, str) else secret
    if len(data) < HMAC_MIN_BYTES:
        raise ValueError(f"an HMAC secret needs at least {HMAC_MIN_BYTES} bytes")
    stripped = data.lstrip()
    if stripped.startswith((b"-----BEGIN", b"ssh-", b"ecdsa-")):
        raise ValueError("a PEM or SSH key must not be used as an HMAC secret")
    parameters: KeyParameters | None = {"kid": kid} if kid else None
    try:
        return OctKey.import_key(data, parameters)
    except JoseError as error:
        raise ValueError("unusable HMAC secret") from error

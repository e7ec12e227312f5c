"""The token cases every verifier test runs: unit tests call ``verify`` directly, the
end-to-end tests send the same tokens through a real WebSocket handshake and a real
HTTP request. Tokens are built lazily so time-based claims are fresh.
"""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import utils as asym_utils

from partydeco.auth import (
    BadSignature,
    ClaimError,
    DisallowedAlgorithm,
    ExpiredToken,
    InvalidToken,
    JWTVerifier,
    KeyNotFound,
    MalformedToken,
    MissingClaim,
    TokenNotYetValid,
    TokenTooLarge,
    WrongAudience,
    WrongAuthorizedParty,
    WrongIssuer,
)
from tests.support.authkit import (
    AUDIENCE,
    AZP,
    ISSUER,
    b64,
    b64json,
    claims,
    ec,
    ed,
    forge,
    hmac_forge,
    jwks,
    mint,
    rsa,
    sign_manual,
    sign_raw,
)

K_RSA = rsa("rsa-1")
K_EC = ec("ec-1")
K_ED = ed("ed-1")
TRUSTED_JWKS = jwks(K_RSA, K_EC, K_ED)
#: Foreign keys that reuse the trusted kids.
EVIL_RSA = rsa("rsa-1")
EVIL_EC = ec("ec-1")
ALGORITHMS = ["RS256", "ES256", "EdDSA", "Ed25519"]
POLICY: dict[str, Any] = {
    "issuer": ISSUER,
    "audience": AUDIENCE,
    "authorized_parties": [AZP],
    "algorithms": ALGORITHMS,
}


def make_verifier(**overrides: Any) -> JWTVerifier:
    """The verifier every case is written against: local JWKS, strict policy."""
    return JWTVerifier.from_jwks(TRUSTED_JWKS, **{**POLICY, **overrides})


@dataclass(frozen=True)
class Case:
    """A token and the error it must produce."""

    id: str
    token: Callable[[], str]
    error: type[InvalidToken]


def _pem() -> bytes:
    return K_RSA.as_pem(private=False)


def _der() -> bytes:
    return K_RSA.raw_value.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def _n_bytes() -> bytes:
    n = str(K_RSA.as_dict(private=False)["n"])
    return base64.urlsafe_b64decode(n + "=" * (-len(n) % 4))


def _ec_point() -> bytes:
    return K_EC.raw_value.public_key().public_bytes(
        serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
    )


def _tamper(token: str, part: int, change: Callable[[dict[str, Any]], None]) -> str:
    segments = token.split(".")
    raw = segments[part] + "=" * (-len(segments[part]) % 4)
    obj = json.loads(base64.urlsafe_b64decode(raw))
    change(obj)
    segments[part] = b64json(obj)
    return ".".join(segments)


def _flip_signature(token: str) -> str:
    head, payload, sig = token.split(".")
    raw = bytearray(base64.urlsafe_b64decode(sig + "=" * (-len(sig) % 4)))
    raw[len(raw) // 2] ^= 0x01
    return f"{head}.{payload}.{b64(bytes(raw))}"


def _der_ecdsa() -> str:
    token = mint(K_EC, alg="ES256")
    head, payload, sig = token.split(".")
    raw = base64.urlsafe_b64decode(sig + "=" * (-len(sig) % 4))
    r, s = int.from_bytes(raw[:32], "big"), int.from_bytes(raw[32:], "big")
    return f"{head}.{payload}.{b64(asym_utils.encode_dss_signature(r, s))}"


def _deep_payload() -> str:
    depth = 2500
    return sign_raw(K_EC, {"kid": "ec-1"}, b"[" * depth + b"]" * depth, alg="ES256")


def _attacker_jwk() -> str:
    return mint(EVIL_EC, alg="ES256", jwk=EVIL_EC.as_dict(private=False))


def _raw_claims(text: str) -> str:
    return sign_raw(K_RSA, {"kid": "rsa-1", "typ": "JWT"}, text.encode())


def _nan_exp() -> str:
    base = json.dumps(claims(exp=...))
    return _raw_claims(base[:-1] + ', "exp": NaN}')


def _now() -> int:
    return int(time.time())


NONE_HEADERS = [{"alg": name, "typ": "JWT"} for name in ("none", "None", "NONE", "nOnE")]

REJECT: list[Case] = [
    # algorithm and header
    *[
        Case(f"alg-{h['alg']}-empty-sig", lambda h=h: forge(h, claims(), b""), MalformedToken)
        for h in NONE_HEADERS
    ],
    *[
        Case(
            f"alg-{h['alg']}-junk-sig",
            lambda h=h: forge(h, claims(), b"junk"),
            DisallowedAlgorithm,
        )
        for h in NONE_HEADERS
    ],
    Case(
        "hs256-key-pem",
        lambda: hmac_forge({"alg": "HS256", "kid": "rsa-1"}, claims(), _pem()),
        DisallowedAlgorithm,
    ),
    Case(
        "hs256-key-der",
        lambda: hmac_forge({"alg": "HS256", "kid": "rsa-1"}, claims(), _der()),
        DisallowedAlgorithm,
    ),
    Case(
        "hs256-key-jwk-n",
        lambda: hmac_forge({"alg": "HS256", "kid": "rsa-1"}, claims(), _n_bytes()),
        DisallowedAlgorithm,
    ),
    Case(
        "hs256-key-jwk-json",
        lambda: hmac_forge(
            {"alg": "HS256", "kid": "rsa-1"},
            claims(),
            json.dumps(K_RSA.as_dict(private=False)).encode(),
        ),
        DisallowedAlgorithm,
    ),
    Case(
        "hs256-key-ec-point",
        lambda: hmac_forge({"alg": "HS256", "kid": "ec-1"}, claims(), _ec_point()),
        DisallowedAlgorithm,
    ),
    Case("alg-rs512-not-allowed", lambda: mint(K_RSA, alg="RS512"), DisallowedAlgorithm),
    Case("alg-ps256-not-allowed", lambda: mint(K_RSA, alg="PS256"), DisallowedAlgorithm),
    Case(
        "alg-unknown",
        lambda: forge({"alg": "XX256", "kid": "rsa-1"}, claims(), b"sig"),
        DisallowedAlgorithm,
    ),
    Case("alg-missing", lambda: forge({"kid": "rsa-1"}, claims(), b"sig"), DisallowedAlgorithm),
    Case("rs256-with-ec-kid", lambda: mint(K_RSA, kid="ec-1"), KeyNotFound),
    Case(
        "crit-unknown",
        lambda: sign_manual(K_RSA, {"kid": "rsa-1", "crit": ["x-foo"], "x-foo": 1}, claims()),
        MalformedToken,
    ),
    Case(
        "b64-false",
        lambda: sign_manual(K_RSA, {"kid": "rsa-1", "b64": False, "crit": ["b64"]}, claims()),
        MalformedToken,
    ),
    Case(
        "zip-def",
        lambda: sign_manual(K_RSA, {"kid": "rsa-1", "zip": "DEF"}, claims()),
        MalformedToken,
    ),
    Case("foreign-key-known-kid", lambda: mint(EVIL_RSA), BadSignature),
    Case("embedded-attacker-jwk", _attacker_jwk, BadSignature),
    Case("unknown-kid", lambda: mint(rsa("nobody")), KeyNotFound),
    Case("kid-path", lambda: mint(EVIL_RSA, kid="../../dev/null"), KeyNotFound),
    Case("kid-sql", lambda: mint(EVIL_RSA, kid="' OR 1=1 --"), KeyNotFound),
    Case("kid-long", lambda: mint(EVIL_RSA, kid="k" * 300), KeyNotFound),
    Case("kid-int", lambda: forge({"alg": "RS256", "kid": 123}, claims(), b"sig"), KeyNotFound),
    Case("kid-object", lambda: forge({"alg": "RS256", "kid": {}}, claims(), b"sig"), KeyNotFound),
    Case("no-kid-multi-key-set", lambda: mint(K_RSA, kid=None), KeyNotFound),
    Case("jwe-five-segments", lambda: "eyJhbGciOiJSU0EtT0FFUCJ9.a.b.c.d", MalformedToken),
    Case(
        "json-serialization",
        lambda: json.dumps({"payload": "e30", "protected": "e30", "signature": "AA"}),
        MalformedToken,
    ),
    # format and signature
    Case(
        "tampered-header",
        lambda: _tamper(mint(K_RSA), 0, lambda h: h.update(typ="at+jwt")),
        BadSignature,
    ),
    Case(
        "tampered-payload",
        lambda: _tamper(mint(K_RSA), 1, lambda c: c.update(sub="admin")),
        BadSignature,
    ),
    Case("tampered-signature", lambda: _flip_signature(mint(K_RSA)), BadSignature),
    Case("ecdsa-der-signature", _der_ecdsa, BadSignature),
    Case(
        "ecdsa-zero-signature",
        lambda: ".".join([*mint(K_EC, alg="ES256").split(".")[:2], b64(bytes(64))]),
        BadSignature,
    ),
    Case("empty-signature", lambda: mint(K_RSA).rsplit(".", 1)[0] + ".", MalformedToken),
    Case("two-segments", lambda: mint(K_RSA).rsplit(".", 1)[0], MalformedToken),
    Case("four-segments", lambda: mint(K_RSA) + ".AAAA", MalformedToken),
    Case("trailing-dot", lambda: mint(K_RSA) + ".", MalformedToken),
    Case("empty-string", lambda: "", MalformedToken),
    Case(
        "plus-in-segment",
        lambda: mint(K_RSA).replace("-", "+").replace("_", "+"),
        MalformedToken,
    ),
    Case("space-in-segment", lambda: mint(K_RSA)[:20] + " " + mint(K_RSA)[21:], MalformedToken),
    Case(
        "header-not-json",
        lambda: b64(b"not json") + "." + mint(K_RSA).split(".", 1)[1],
        MalformedToken,
    ),
    Case("payload-array", lambda: _raw_claims("[1, 2]"), MalformedToken),
    Case("payload-string", lambda: _raw_claims('"x"'), MalformedToken),
    Case("payload-null", lambda: _raw_claims("null"), MalformedToken),
    Case("payload-not-json", lambda: _raw_claims("{nope"), MalformedToken),
    Case(
        "payload-invalid-utf8",
        lambda: sign_raw(K_RSA, {"kid": "rsa-1"}, b'{"sub": "\xff\xfe"}'),
        MalformedToken,
    ),
    Case("payload-deeply-nested", _deep_payload, MalformedToken),
    Case("oversized", lambda: mint(K_RSA, claims(pad="x" * 9000)), TokenTooLarge),
    # claims
    Case("exp-missing", lambda: mint(K_RSA, claims(exp=...)), MissingClaim),
    Case("exp-past-leeway", lambda: mint(K_RSA, claims(exp=_now() - 6)), ExpiredToken),
    Case("exp-string", lambda: mint(K_RSA, claims(exp=str(_now() + 300))), ClaimError),
    Case("exp-true", lambda: mint(K_RSA, claims(exp=True)), ClaimError),
    Case("exp-null", lambda: mint(K_RSA, claims(exp=None)), MissingClaim),
    Case(
        "exp-infinite",
        lambda: _raw_claims(json.dumps(claims(exp=...))[:-1] + ', "exp": 1e309}'),
        ClaimError,
    ),
    Case("exp-nan", _nan_exp, MalformedToken),
    Case("nbf-future", lambda: mint(K_RSA, claims(nbf=_now() + 600)), TokenNotYetValid),
    Case("iat-future", lambda: mint(K_RSA, claims(iat=_now() + 600)), TokenNotYetValid),
    Case("iss-missing", lambda: mint(K_RSA, claims(iss=...)), MissingClaim),
    Case("iss-wrong", lambda: mint(K_RSA, claims(iss="https://other.example")), WrongIssuer),
    Case("iss-suffix-trick", lambda: mint(K_RSA, claims(iss=ISSUER + ".evil")), WrongIssuer),
    Case("iss-trailing-slash", lambda: mint(K_RSA, claims(iss=ISSUER + "/")), WrongIssuer),
    Case("aud-missing", lambda: mint(K_RSA, claims(aud=...)), MissingClaim),
    Case("aud-wrong", lambda: mint(K_RSA, claims(aud="someone-else")), WrongAudience),
    Case("aud-empty-list", lambda: mint(K_RSA, claims(aud=[])), WrongAudience),
    Case("aud-list-without-ours", lambda: mint(K_RSA, claims(aud=["a", "b"])), WrongAudience),
    Case("azp-missing", lambda: mint(K_RSA, claims(azp=...)), WrongAuthorizedParty),
    Case(
        "azp-wrong",
        lambda: mint(K_RSA, claims(azp="https://evil.example")),
        WrongAuthorizedParty,
    ),
    Case("sub-missing", lambda: mint(K_RSA, claims(sub=...)), MissingClaim),
    Case("sub-empty", lambda: mint(K_RSA, claims(sub="")), ClaimError),
    Case("sub-not-string", lambda: mint(K_RSA, claims(sub=42)), ClaimError),
]

ACCEPT: list[Case] = [
    Case("rs256", lambda: mint(K_RSA), InvalidToken),
    Case("es256", lambda: mint(K_EC, alg="ES256"), InvalidToken),
    Case("eddsa", lambda: mint(K_ED, alg="EdDSA"), InvalidToken),
    Case("ed25519", lambda: mint(K_ED, alg="Ed25519"), InvalidToken),
    Case("aud-list-with-ours", lambda: mint(K_RSA, claims(aud=["x", AUDIENCE])), InvalidToken),
    Case("exp-within-leeway", lambda: mint(K_RSA, claims(exp=_now() - 2)), InvalidToken),
    Case("nbf-within-leeway", lambda: mint(K_RSA, claims(nbf=_now() + 2)), InvalidToken),
]

"""JWTVerifier: accepted tokens, every refused token (by exact error), and configuration guards."""

from __future__ import annotations

import time

import pytest
from joserfc.jwk import KeySet

from partydeco.auth import (
    ExpiredToken,
    InvalidToken,
    JWTVerifier,
    KeyNotFound,
    LocalKeys,
    TokenTooLarge,
)
from partydeco.auth.keys import hmac_key, import_jwks, load_pem_public_key
from partydeco.errors import PartydecoError
from tests.support.auth_cases import ACCEPT, K_EC, K_RSA, POLICY, REJECT, Case, make_verifier
from tests.support.authkit import AUDIENCE, SECRET, claims, ec, jwks, mint, rsa


@pytest.mark.parametrize("case", ACCEPT, ids=lambda c: c.id)
async def test_accepts(case: Case) -> None:
    result = await make_verifier().verify(case.token())
    assert result["sub"] == "user-1"


@pytest.mark.parametrize("case", REJECT, ids=lambda c: c.id)
async def test_rejects(case: Case) -> None:
    token = case.token()
    with pytest.raises(case.error) as caught:
        await make_verifier().verify(token)
    error = caught.value
    assert isinstance(error, PartydecoError)
    assert error.status == 401
    # the message never echoes the token or a recognisable piece of it
    for piece in [token, *token.split(".")]:
        if len(piece) >= 8:
            assert piece not in str(error)
            assert piece not in repr(error)


async def test_hs256_accepted_with_secret() -> None:
    verifier = JWTVerifier.from_secret(SECRET, audience=AUDIENCE)
    token = mint(hmac_key(SECRET), alg="HS256", kid=None)
    assert (await verifier.verify(token))["sub"] == "user-1"


async def test_hs256_wrong_secret_refused() -> None:
    verifier = JWTVerifier.from_secret(SECRET)
    token = mint(hmac_key("another-secret-that-is-long-enough-000000"), alg="HS256", kid=None)
    with pytest.raises(InvalidToken, match="bad token signature"):
        await verifier.verify(token)


async def test_single_key_set_accepts_token_without_kid() -> None:
    verifier = JWTVerifier.from_jwks(jwks(K_RSA), **POLICY)
    assert (await verifier.verify(mint(K_RSA, kid=None)))["sub"] == "user-1"


async def test_pem_public_key() -> None:
    verifier = JWTVerifier.from_pem(K_RSA.as_pem(private=False), **POLICY)
    assert (await verifier.verify(mint(K_RSA, kid=None)))["iss"] == POLICY["issuer"]
    with pytest.raises(InvalidToken):
        await verifier.verify(mint(rsa("x"), kid=None))


async def test_duplicate_claim_keeps_last_value() -> None:
    # json keeps the last duplicate; pin it so a change of JSON parser is noticed
    from tests.support.auth_cases import _raw_claims

    text = '{"sub": "a", "sub": "admin", ' + '"exp": %d, "iss": "%s", "aud": "%s", "azp": "%s"}'
    token = _raw_claims(
        text % (time.time() + 60, POLICY["issuer"], AUDIENCE, "https://app.example")
    )
    assert (await make_verifier().verify(token))["sub"] == "admin"


async def test_exp_equal_now_without_leeway_is_expired() -> None:
    now = 1_800_000_000
    verifier = make_verifier(leeway=0, clock=lambda: now)
    token = mint(K_RSA, claims(exp=now, iat=now - 10))
    with pytest.raises(ExpiredToken):
        await verifier.verify(token)
    assert await make_verifier(leeway=0, clock=lambda: now - 1).verify(token)


async def test_leeway_is_configurable() -> None:
    token = mint(K_RSA, claims(exp=int(time.time()) - 20))
    with pytest.raises(ExpiredToken):
        await make_verifier().verify(token)
    assert await make_verifier(leeway=30).verify(token)


async def test_exp_optional_when_configured() -> None:
    token = mint(K_RSA, claims(exp=...))
    assert await make_verifier(require_exp=False).verify(token)


async def test_required_claims_configurable() -> None:
    token = mint(K_RSA, claims(org="acme"))
    assert await make_verifier(required_claims=["sub", "org"]).verify(token)
    with pytest.raises(InvalidToken, match="missing claim 'org'"):
        await make_verifier(required_claims=["sub", "org"]).verify(mint(K_RSA))


async def test_size_cap_applies_before_parsing() -> None:
    # garbage that would be malformed is reported as too large: nothing was parsed
    with pytest.raises(TokenTooLarge):
        await make_verifier().verify("!" * 8193)
    with pytest.raises(TokenTooLarge):
        await make_verifier(max_token_size=100).verify(mint(K_RSA))


async def test_multi_audience_config() -> None:
    verifier = make_verifier(audience=["one", "two"])
    assert await verifier.verify(mint(K_RSA, claims(aud="two")))
    with pytest.raises(InvalidToken):
        await verifier.verify(mint(K_RSA, claims(aud="three")))


async def test_issuer_not_checked_when_not_configured() -> None:
    verifier = make_verifier(issuer=None)
    assert await verifier.verify(mint(K_RSA, claims(iss=...)))


# -- configuration guards ------------------------------------------------------------


def test_hmac_algorithm_refused_for_public_keys() -> None:
    with pytest.raises(ValueError, match="cannot be used with public keys"):
        JWTVerifier.from_jwks(jwks(K_RSA), algorithms=["RS256", "HS256"])


def test_none_algorithm_cannot_be_allowed() -> None:
    with pytest.raises(ValueError):
        JWTVerifier.from_jwks(jwks(K_RSA), algorithms=["none"])
    with pytest.raises(ValueError):
        JWTVerifier.from_secret(SECRET, algorithms=["none"])


def test_asymmetric_algorithm_refused_for_secret() -> None:
    with pytest.raises(ValueError, match="cannot be used with an HMAC secret"):
        JWTVerifier.from_secret(SECRET, algorithms=["RS256"])


@pytest.mark.parametrize(
    "secret",
    [K_RSA.as_pem(private=False), K_RSA.as_pem(private=False).decode(), b"short"],
    ids=["pem-bytes", "pem-text", "short"],
)
def test_public_key_or_short_value_refused_as_hmac_secret(secret: str | bytes) -> None:
    with pytest.raises(ValueError):
        hmac_key(secret)


def test_local_keys_keep_symmetric_and_public_apart() -> None:
    with pytest.raises(ValueError):
        LocalKeys(import_jwks(jwks(K_RSA)), symmetric=True)
    with pytest.raises(ValueError):
        LocalKeys(KeySet([hmac_key(SECRET)]))


def test_import_jwks_drops_private_unsupported_and_weak_keys() -> None:
    weak = rsa("weak", bits=1024)
    private = K_EC.as_dict(private=True) | {"kid": "private"}
    document = {
        "keys": [
            private,
            {"kty": "oct", "k": "c2VjcmV0", "kid": "oct"},
            {"kty": "XYZ", "kid": "future"},
            weak.as_dict(private=False),
            ec("enc").as_dict(private=False) | {"use": "enc"},
            "not a dict",
            K_RSA.as_dict(private=False),
        ]
    }
    kids = [key.kid for key in import_jwks(document).keys]
    assert kids == ["rsa-1"]
    # a local JWKS may hold private keys: only their public half is kept
    local = import_jwks(document, allow_private=True)
    assert [key.kid for key in local.keys] == ["private", "rsa-1"]
    assert not any(key.is_private for key in local.keys)
    with pytest.raises(ValueError):
        import_jwks({"keys": [private]})


def test_pem_private_key_keeps_public_half_only() -> None:
    key = load_pem_public_key(K_RSA.as_pem(private=True))
    assert not key.is_private


async def test_unknown_kid_is_key_not_found_for_local_keys() -> None:
    with pytest.raises(KeyNotFound):
        await make_verifier().verify(mint(rsa("stranger")))


async def test_issue_token_round_trip() -> None:
    from partydeco.auth import issue_token

    token = issue_token(SECRET, "alice", issuer="app", audience="rooms", claims={"role": "mod"})
    verifier = JWTVerifier.from_secret(SECRET, issuer="app", audience="rooms")
    result = await verifier.verify(token)
    assert (result["sub"], result["role"], result["iss"]) == ("alice", "mod", "app")
    assert result["exp"] - result["iat"] == 300
    expired = issue_token(
        SECRET, "alice", issuer="app", audience="rooms", clock=lambda: time.time() - 600
    )
    with pytest.raises(ExpiredToken):
        await verifier.verify(expired)
    for bad in [{"subject": ""}, {"expires_in": 0}, {"algorithm": "RS256"}]:
        with pytest.raises(ValueError):
            issue_token(SECRET, **{"subject": "a", **bad})  # type: ignore[arg-type]

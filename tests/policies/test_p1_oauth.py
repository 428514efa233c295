"""OAuth2 client credentials over real HTTP: /oauth/token, JWKS, JWTs on /v1, scopes, expiry, signatures,
rotation of signing keys without refusing a valid token, and revocation."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from datetime import timedelta
from typing import Any

import httpx
import pytest
from joserfc import jwt
from joserfc.jwk import RSAKey

from gateway.store import policy_manage
from gateway.store.crypto import Vault
from gateway.store.snapshot import load_snapshot
from tests.conftest import Gateway, unigate
from tests.policies.p1_support import application, until


@pytest.fixture
def vault(gateway: Gateway) -> Vault:
    return Vault(gateway.settings.secret_key)


async def new_client(vault: Vault, scopes: list[str]) -> tuple[str, str, str]:
    """An application subscribed to every API with an OAuth client; (client_id, secret, api key)."""
    consumer, key, _ = await application()
    issued = await policy_manage.create_oauth_client(vault, consumer, scopes, name="tests")
    return issued.client_id, issued.client_secret, key


async def token_for(http: httpx.AsyncClient, client_id: str, secret: str, **form: str) -> httpx.Response:
    """Ask for a token once the gateway's snapshot knows the client."""
    answer: httpx.Response | None = None

    async def issued() -> bool:
        nonlocal answer
        answer = await http.post(
            "/oauth/token", data={"grant_type": "client_credentials", **form}, auth=(client_id, secret)
        )
        return answer.status_code != 401

    await until(issued, what="the new OAuth client")
    assert answer is not None
    return answer


def claims_of(token: str) -> tuple[dict[str, Any], dict[str, Any]]:
    header, payload, _ = token.split(".")
    pad = lambda part: part + "=" * (-len(part) % 4)  # noqa: E731
    return json.loads(base64.urlsafe_b64decode(pad(header))), json.loads(
        base64.urlsafe_b64decode(pad(payload))
    )


async def test_a_token_from_the_token_endpoint_calls_the_apis_its_scopes_allow(
    gateway: Gateway, vault: Vault
) -> None:
    client_id, secret, _ = await new_client(vault, ["stockouts:read", "orders:read"])
    async with httpx.AsyncClient(base_url=gateway.url) as http:
        answer = await token_for(http, client_id, secret)
        assert answer.status_code == 200, answer.text
        assert answer.headers["cache-control"] == "no-store"
        body = answer.json()
        assert body["token_type"] == "Bearer" and body["expires_in"] == gateway.settings.token_ttl_seconds
        assert set(body["scope"].split()) == {"stockouts:read", "orders:read"}
        header, claims = claims_of(body["access_token"])
        assert header["alg"] == "RS256" and header["kid"]
        assert (
            claims["sub"] == client_id and claims["exp"] - claims["iat"] == gateway.settings.token_ttl_seconds
        )

        bearer = {"Authorization": f"Bearer {body['access_token']}"}
        ok = await http.get("/v1/stockouts", params={"limit": 1}, headers=bearer)
        assert ok.status_code == 200, ok.text
        refused = await http.post("/v1/orders", json={}, headers=bearer)
        assert refused.status_code == 403
        assert refused.json()["code"] == "insufficient_scope"
        assert refused.json()["required_scope"] == "orders:write"
        assert 'error="insufficient_scope"' in refused.headers["www-authenticate"]

        # JWKS publishes the key that signed it.
        keys = (await http.get("/.well-known/jwks.json")).json()["keys"]
    assert header["kid"] in {key["kid"] for key in keys}
    assert all("d" not in key for key in keys)  # public halves only


async def test_client_secret_post_works_and_a_narrower_scope_can_be_asked(
    gateway: Gateway, vault: Vault
) -> None:
    client_id, secret, _ = await new_client(vault, ["stockouts:read", "orders:read"])
    async with httpx.AsyncClient(base_url=gateway.url) as http:
        await token_for(http, client_id, secret)
        answer = await http.post(
            "/oauth/token",
            data={
                "grant_type": "client_credentials",
                "client_id": client_id,
                "client_secret": secret,
                "scope": "orders:read",
            },
        )
        assert answer.status_code == 200, answer.text
        assert answer.json()["scope"] == "orders:read"
        bearer = {"Authorization": f"Bearer {answer.json()['access_token']}"}
        # Scope strings as clients send them: extra spaces and repeats ask for the same; only spaces, for all.
        for asked, granted in {
            "  orders:read   stockouts:read ": "orders:read stockouts:read",
            "orders:read orders:read": "orders:read",
            " ": "orders:read stockouts:read",
        }.items():
            given = await http.post(
                "/oauth/token",
                data={"grant_type": "client_credentials", "scope": asked},
                auth=(client_id, secret),
            )
            assert given.json()["scope"] == granted, asked
            assert claims_of(given.json()["access_token"])[1]["scope"] == granted, asked
        comma = await http.post(
            "/oauth/token",
            data={"grant_type": "client_credentials", "scope": "orders:read,stockouts:read"},
            auth=(client_id, secret),
        )
        assert comma.json()["code"] == "invalid_scope"
        assert "'orders:read,stockouts:read'" in comma.json()["detail"]
        assert "separated by spaces" in comma.json()["detail"]
        assert (await http.get("/v1/stockouts", params={"limit": 1}, headers=bearer)).json()["code"] == (
            "insufficient_scope"
        )


async def test_the_token_endpoint_refuses_in_oauth2_terms(gateway: Gateway, vault: Vault) -> None:
    client_id, secret, _ = await new_client(vault, ["stockouts:read"])
    async with httpx.AsyncClient(base_url=gateway.url) as http:
        await token_for(http, client_id, secret)
        cases = {
            "wrong secret": (
                {"grant_type": "client_credentials"},
                (client_id, "not-the-secret"),
                401,
                "invalid_client",
            ),
            "unknown client": (
                {"grant_type": "client_credentials"},
                ("ugc_nobody", secret),
                401,
                "invalid_client",
            ),
            "scope not granted": (
                {"grant_type": "client_credentials", "scope": "orders:write"},
                (client_id, secret),
                400,
                "invalid_scope",
            ),
            "unknown scope": (
                {"grant_type": "client_credentials", "scope": "admin"},
                (client_id, secret),
                400,
                "invalid_scope",
            ),
            "other grant": ({"grant_type": "password"}, (client_id, secret), 400, "unsupported_grant_type"),
            "no grant": ({}, (client_id, secret), 400, "invalid_request"),
        }
        for case, (form, auth, status, code) in cases.items():
            answer = await http.post("/oauth/token", data=form, auth=auth)
            assert answer.status_code == status, case
            problem = answer.json()
            assert answer.headers["content-type"] == "application/problem+json", case
            assert problem["code"] == problem["error"] == code, case
            assert secret not in answer.text, case
            assert "[" not in problem["detail"] and problem["detail"] != code, (case, problem["detail"])
        # The secret in the URL (where logs and proxies keep it) is not read; the answer says where it goes.
        in_url = await http.post(
            "/oauth/token",
            params={"client_id": client_id, "client_secret": secret},
            data={"grant_type": "client_credentials"},
        )
        assert (in_url.status_code, in_url.json()["code"]) == (401, "invalid_client")
        assert "never in the URL" in in_url.json()["detail"]
        missing = await http.post(
            "/oauth/token", json={"grant_type": "client_credentials"}, auth=(client_id, secret)
        )
        assert "grant_type is missing" in missing.json()["detail"]


async def test_an_expired_or_wrongly_signed_token_is_refused(gateway: Gateway, vault: Vault) -> None:
    client_id, secret, _ = await new_client(vault, ["stockouts:read"])
    async with httpx.AsyncClient(base_url=gateway.url) as http:
        good = (await token_for(http, client_id, secret)).json()["access_token"]
        header, claims = claims_of(good)
        signer = next(k for k in (await load_snapshot(vault)).signing_keys if k.kid == header["kid"])
        now = int(time.time())
        # Signed with the real key, but an hour past its expiry.
        expired = jwt.encode(
            header, {**claims, "iat": now - 7200, "exp": now - 3600}, RSAKey.import_key(signer.private_jwk)
        )
        # Same claims and kid, signed by a key the gateway never published.
        forged = jwt.encode(header, claims, RSAKey.generate_key(2048, parameters={"kid": header["kid"]}))
        # Claims edited after signing.
        h, _, s = good.split(".")
        edited = ".".join(
            [
                h,
                base64.urlsafe_b64encode(json.dumps({**claims, "scope": "orders:write"}).encode())
                .decode()
                .rstrip("="),
                s,
            ]
        )
        key = RSAKey.import_key(signer.private_jwk)
        # Signed with the real key, but for another audience, or not valid for an hour yet.
        elsewhere = jwt.encode(header, {**claims, "aud": ["https://other.example"]}, key)
        early = jwt.encode(header, {**claims, "nbf": now + 3600}, key)
        b64 = lambda data: base64.urlsafe_b64encode(json.dumps(data).encode()).decode().rstrip("=")  # noqa: E731
        unsigned = f"{b64({'alg': 'none', 'typ': 'JWT'})}.{good.split('.')[1]}."
        # HS256 "signed" with the published public key as the shared secret.
        public = RSAKey.import_key(signer.public_jwk).as_pem(private=False)
        confused_head = f"{b64({'alg': 'HS256', 'kid': header['kid']})}.{good.split('.')[1]}"
        mac = hmac.new(public, confused_head.encode(), hashlib.sha256).digest()
        confused = f"{confused_head}.{base64.urlsafe_b64encode(mac).decode().rstrip('=')}"
        expected_reason = {
            "expired": "has expired",
            "forged": "not signed by a key of this gateway",
            "edited": "not signed by a key of this gateway",
            "garbage": "not a JWT",
            "another audience": "claims",
            "not yet valid": "claims",
            "alg none": "not signed with RS256",
            "HS256 with the public key": "not signed with RS256",
        }
        for name, token in {
            "expired": expired,
            "forged": forged,
            "edited": edited,
            "garbage": "eyJ.x.y",
            "another audience": elsewhere,
            "not yet valid": early,
            "alg none": unsigned,
            "HS256 with the public key": confused,
        }.items():
            answer = await http.get(
                "/v1/stockouts", params={"limit": 1}, headers={"Authorization": f"Bearer {token}"}
            )
            assert answer.status_code == 401, name
            assert answer.json()["code"] == "unauthorized", name
            # Why, in words a client developer can act on, never a library's exception class.
            detail = answer.json()["detail"]
            assert "Error" not in detail and expected_reason[name] in detail, (name, detail)
        assert (
            "expired"
            in (
                await http.get(
                    "/v1/stockouts", params={"limit": 1}, headers={"Authorization": f"Bearer {expired}"}
                )
            ).json()["detail"]
        )
        ours = jwt.encode(header, {**claims, "aud": gateway.settings.token_issuer}, key)
        for token in (good, ours):
            assert (
                await http.get(
                    "/v1/stockouts", params={"limit": 1}, headers={"Authorization": f"Bearer {token}"}
                )
            ).status_code == 200


async def test_rotating_the_signing_key_refuses_no_valid_token(gateway: Gateway, vault: Vault) -> None:
    client_id, secret, _ = await new_client(vault, ["stockouts:read"])
    async with httpx.AsyncClient(base_url=gateway.url) as http:
        before = (await token_for(http, client_id, secret)).json()["access_token"]
        old_kid = claims_of(before)[0]["kid"]
        new_kid = (
            await policy_manage.rotate_signing_key(
                vault,
                token_ttl=timedelta(seconds=gateway.settings.token_ttl_seconds),
                activate_in=timedelta(0),
            )
        ).kid

        async def signs_with_the_new_key() -> bool:
            answer = await http.post(
                "/oauth/token", data={"grant_type": "client_credentials"}, auth=(client_id, secret)
            )
            return claims_of(answer.json()["access_token"])[0]["kid"] == new_kid

        await until(signs_with_the_new_key, what="the new signing key")
        kids = {key["kid"] for key in (await http.get("/.well-known/jwks.json")).json()["keys"]}
        assert {old_kid, new_kid} <= kids
        after = (
            await http.post(
                "/oauth/token", data={"grant_type": "client_credentials"}, auth=(client_id, secret)
            )
        ).json()
        for token in (before, after["access_token"]):
            answer = await http.get(
                "/v1/stockouts", params={"limit": 1}, headers={"Authorization": f"Bearer {token}"}
            )
            assert answer.status_code == 200, answer.text


async def test_a_revoked_client_gets_no_token_and_its_tokens_stop_working(
    gateway: Gateway, vault: Vault
) -> None:
    client_id, secret, _ = await new_client(vault, ["stockouts:read"])
    async with httpx.AsyncClient(base_url=gateway.url) as http:
        token = (await token_for(http, client_id, secret)).json()["access_token"]
        bearer = {"Authorization": f"Bearer {token}"}
        assert (await http.get("/v1/stockouts", params={"limit": 1}, headers=bearer)).status_code == 200
        await policy_manage.revoke_oauth_client(client_id)

        async def refused() -> bool:
            return (await http.get("/v1/stockouts", params={"limit": 1}, headers=bearer)).status_code == 401

        await until(refused, within=1.0, what="the revocation")
        answer = await http.post(
            "/oauth/token", data={"grant_type": "client_credentials"}, auth=(client_id, secret)
        )
        assert answer.json()["code"] == "invalid_client"


async def test_a_rotated_secret_overlaps_then_only_the_new_one_works(gateway: Gateway, vault: Vault) -> None:
    client_id, secret, _ = await new_client(vault, ["stockouts:read"])
    async with httpx.AsyncClient(base_url=gateway.url) as http:
        await token_for(http, client_id, secret)
        rotated = await policy_manage.rotate_oauth_client_secret(client_id, overlap=timedelta(minutes=5))

        async def new_secret_works() -> bool:
            return (await token_for(http, client_id, rotated.client_secret)).status_code == 200

        await until(new_secret_works, what="the new secret")
        assert (await token_for(http, client_id, secret)).status_code == 200  # inside the overlap
        final = await policy_manage.rotate_oauth_client_secret(client_id)

        async def old_secrets_refused() -> bool:
            answer = await http.post(
                "/oauth/token",
                data={"grant_type": "client_credentials"},
                auth=(client_id, rotated.client_secret),
            )
            return answer.status_code == 401

        await until(old_secrets_refused, what="the rotation without overlap")
        assert (await token_for(http, client_id, final.client_secret)).status_code == 200


async def test_a_leaked_key_replaced_by_rotate_then_retire_leaves_tokens_being_issued(
    gateway: Gateway, vault: Vault
) -> None:
    client_id, secret, _ = await new_client(vault, ["stockouts:read"])
    async with httpx.AsyncClient(base_url=gateway.url) as http:
        leaked = (await token_for(http, client_id, secret)).json()["access_token"]
        # The documented way: publish a new key (it would sign in 60 s), then withdraw the old ones now.
        new_kid = (
            await policy_manage.rotate_signing_key(
                vault, token_ttl=timedelta(seconds=gateway.settings.token_ttl_seconds)
            )
        ).kid
        for key in await policy_manage.list_signing_keys():
            if key["retired_at"] is None and key["kid"] != new_kid:
                await policy_manage.retire_signing_key(key["kid"])

        async def old_token_refused() -> bool:
            answer = await http.get(
                "/v1/stockouts", params={"limit": 1}, headers={"Authorization": f"Bearer {leaked}"}
            )
            return answer.status_code == 401

        await until(old_token_refused, what="the retirement")
        answer = await http.post(
            "/oauth/token", data={"grant_type": "client_credentials"}, auth=(client_id, secret)
        )
        assert answer.status_code == 200, answer.text
        assert claims_of(answer.json()["access_token"])[0]["kid"] == new_kid
        works = await http.get(
            "/v1/stockouts",
            params={"limit": 1},
            headers={"Authorization": f"Bearer {answer.json()['access_token']}"},
        )
        assert works.status_code == 200


async def test_the_token_endpoint_is_documented_as_it_answers(gateway: Gateway, vault: Vault) -> None:
    """A client generated from /docs/openapi.json knows the form to send and the answers to read."""
    client_id, secret, _ = await new_client(vault, ["stockouts:read"])
    async with httpx.AsyncClient(base_url=gateway.url, timeout=30) as http:
        spec = (await http.get("/docs/openapi.json")).json()
        operation = spec["paths"]["/oauth/token"]["post"]
        form = operation["requestBody"]["content"]["application/x-www-form-urlencoded"]["schema"]
        assert form["required"] == ["grant_type"]
        assert set(form["properties"]) == {"grant_type", "scope", "client_id", "client_secret"}
        granted = (await token_for(http, client_id, secret)).json()
        refused = await http.post("/oauth/token", data={"grant_type": "password"}, auth=(client_id, secret))
        wrong = await http.post(
            "/oauth/token", data={"grant_type": "client_credentials"}, auth=(client_id, "x")
        )
    schemas = spec["components"]["schemas"]

    def documented(status: int, media_type: str) -> dict[str, Any]:
        ref = operation["responses"][str(status)]["content"][media_type]["schema"]["$ref"]
        return schemas[ref.rsplit("/", 1)[1]]  # type: ignore[no-any-return]

    answer = documented(200, "application/json")
    assert set(granted) == set(answer["properties"]) == set(answer["required"])
    for response in (refused, wrong):
        problem = documented(response.status_code, "application/problem+json")
        assert set(problem["required"]) <= set(response.json()) <= set(problem["properties"])
        assert (
            f"`{response.json()['error']}`"
            in operation["responses"][str(response.status_code)]["description"]
        )


async def test_plain_http_is_only_for_a_caller_on_this_machine_whatever_host_it_names(
    gateway: Gateway, vault: Vault
) -> None:
    """Plain HTTP to /oauth/token is for local testing: a caller forwarded from elsewhere (X-Forwarded-For)
    is refused even when it names `localhost` in its Host header, which is what authlib looks at."""
    client_id, secret, _ = await new_client(vault, ["orders:read"])
    async with httpx.AsyncClient(base_url=gateway.url, timeout=30) as http:
        assert (await token_for(http, client_id, secret)).status_code == 200  # here, over HTTP: allowed
        for headers in (
            {"Host": "localhost", "X-Forwarded-For": "203.0.113.5"},
            {"Host": "127.0.0.1", "X-Forwarded-For": "127.0.0.1, 203.0.113.5"},
            {"Host": "localhost", "X-Forwarded-For": "unknown"},
        ):
            answer = await http.post(
                "/oauth/token",
                data={"grant_type": "client_credentials"},
                auth=(client_id, secret),
                headers=headers,
            )
            assert answer.status_code == 400, (headers, answer.text)
            assert answer.json()["error_description"] == "the token endpoint must be called over HTTPS"


async def test_a_scope_taken_from_a_client_is_gone_from_its_token_at_once(
    gateway: Gateway, vault: Vault, store: tuple[object, dict[str, str]]
) -> None:
    """`unigate oauth-clients scopes`: the token already issued loses the scope on the next call, on every
    node (they check a token's scopes against its client's); an unknown scope is refused, naming it."""
    client_id, secret, _ = await new_client(vault, ["orders:read", "stockouts:read"])
    _, env = store
    async with httpx.AsyncClient(base_url=gateway.url, timeout=30) as http:
        token = (await token_for(http, client_id, secret)).json()["access_token"]
        bearer = {"Authorization": f"Bearer {token}"}
        assert (await http.get("/v1/stockouts", params={"limit": 1}, headers=bearer)).status_code == 200

        bad = unigate(env, "oauth-clients", "scopes", client_id, "--scope", "stockouts:rite", check=False)
        assert bad.returncode == 2 and "scopes[0]" in bad.stderr and "stockouts:rite" in bad.stderr
        narrowed = unigate(env, "oauth-clients", "scopes", client_id, "--scope", "orders:read")
        assert narrowed.stdout.strip() == f"OAuth client {client_id}: orders:read"

        async def refused() -> bool:
            answer = await http.get("/v1/stockouts", params={"limit": 1}, headers=bearer)
            return answer.status_code == 403 and answer.json()["code"] == "insufficient_scope"

        await until(refused, within=2, what="the narrowed scopes on the gateway")
        assert (await http.get("/v1/orders", params={"limit": 1}, headers=bearer)).status_code == 200

"""Behind a load balancer, sign-in and sign-up throttles count each caller's own address: one address
spraying a password over many usernames, or making accounts by the dozen, is stopped; others are not."""

from __future__ import annotations

from pathlib import Path

import httpx

from portal.throttle import SIGNUPS, SPRAY
from tests.policies.backends import gateway_processes
from tests.portal.conftest import PASSWORD, Session, make_account, unique


def _caller(url: str, address: str) -> Session:
    # The gateway trusts 127.0.0.1 as its load balancer, which says who it forwards for.
    return Session(httpx.AsyncClient(base_url=url, timeout=30, headers={"X-Forwarded-For": address}))


async def test_one_address_is_stopped_spraying_or_signing_up_and_others_are_not(
    store: tuple[object, dict[str, str]], tmp_path: Path
) -> None:
    _, env = store
    account = await make_account("developer", prefix="sprayed")
    with gateway_processes(env, 1, tmp_path, UNIGATE_TRUSTED_PROXIES="127.0.0.1/32") as (url,):
        sprayer, neighbour = _caller(url, "198.51.100.7"), _caller(url, "198.51.100.8")
        try:
            await sprayer.get("/portal/login")
            for _ in range(SPRAY.amount):  # one password, a new username each time: no username sees 10
                answer = await sprayer.form("/portal/login", {"username": unique("u"), "password": "123456"})
                assert answer.status_code == 401
            stopped = await sprayer.form(
                "/portal/login", {"username": account.username, "password": PASSWORD}
            )
            assert stopped.status_code == 429 and int(stopped.headers["retry-after"]) >= 1
            await neighbour.get("/portal/login")
            welcome = await neighbour.form(
                "/portal/login", {"username": account.username, "password": PASSWORD}
            )
            assert welcome.status_code == 303, welcome.text  # another address signs in as usual

            for n in range(SIGNUPS.amount + 1):
                await sprayer.get("/portal/signup")
                made = await sprayer.form(
                    "/portal/signup", {"username": unique("bulk"), "password": PASSWORD}
                )
                if n < SIGNUPS.amount:
                    assert made.status_code == 303, (n, made.text[-500:])
                    sprayer.http.cookies.clear()  # signed in as the new account: sign out, as a script would
            assert made.status_code == 429 and int(made.headers["retry-after"]) >= 1
            await neighbour.get("/portal/signup")
            other = await neighbour.form("/portal/signup", {"username": unique("solo"), "password": PASSWORD})
            assert other.status_code == 303, other.text[-500:]
        finally:
            await sprayer.http.aclose()
            await neighbour.http.aclose()

"""Behind HTTPS (UNIGATE_COOKIE_SECURE=1) the portal's cookies are `__Host-` cookies: Secure, for the whole
site and no domain, so a sibling subdomain cannot plant a CSRF token it knows, or a session it made."""

from __future__ import annotations

import re
from pathlib import Path

import httpx

from tests.policies.backends import gateway_processes
from tests.portal.conftest import make_account

_CSRF = re.compile(r'name="_csrf_token" value="([^"]+)"')


def _set_cookies(answer: httpx.Response) -> dict[str, str]:
    """name -> the whole Set-Cookie line, read from the headers (httpx keeps no Secure cookie over http)."""
    return {
        line.split("=", 1)[0]: line for name, line in answer.headers.multi_items() if name == "set-cookie"
    }


def _value(line: str) -> str:
    return line.split(";", 1)[0].split("=", 1)[1]


async def test_secure_cookies_are_host_cookies_and_an_unprefixed_planted_token_is_not_taken(
    store: tuple[object, dict[str, str]], tmp_path: Path
) -> None:
    _, env = store
    account = await make_account("developer")
    with gateway_processes(env, 1, tmp_path, UNIGATE_COOKIE_SECURE="1") as (url,):
        async with httpx.AsyncClient(base_url=url, timeout=30) as http:
            page = await http.get("/portal/login")
            cookies = _set_cookies(page)
            assert list(cookies) == ["__Host-unigate_csrf"]
            csrf_line = cookies["__Host-unigate_csrf"]
            assert "Secure" in csrf_line and "Path=/" in csrf_line and "Domain" not in csrf_line
            token = _CSRF.search(page.text).group(1)  # type: ignore[union-attr]
            form = {"username": account.username, "password": account.password, "_csrf_token": token}

            # The same token planted under the plain name, as a subdomain could: refused.
            planted = await http.post(
                "/portal/login", data=form, headers={"Cookie": f"unigate_csrf={_value(csrf_line)}"}
            )
            assert planted.status_code == 403

            signed_in = await http.post(
                "/portal/login", data=form, headers={"Cookie": f"__Host-unigate_csrf={_value(csrf_line)}"}
            )
            assert signed_in.status_code == 303, signed_in.text[:300]
            session_line = _set_cookies(signed_in)["__Host-unigate_session"]
            assert "Secure" in session_line and "Path=/" in session_line and "Domain" not in session_line
            home = await http.get(
                "/portal", headers={"Cookie": f"__Host-unigate_session={_value(session_line)}"}
            )
            assert home.status_code == 200 and account.username in home.text

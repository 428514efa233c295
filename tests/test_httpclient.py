"""The way out's HTTP/1.1 client against real servers on 127.0.0.1: keep-alive, chunked and closing
answers, stale connections, timeouts, limits, bad answers and TLS."""

from __future__ import annotations

import asyncio
import datetime
import ipaddress
import json
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
from aiohttp import web
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from gateway import httpclient
from gateway.httpclient import Pool, TransportError

FORM = {"Content-Type": "application/x-www-form-urlencoded"}


@asynccontextmanager
async def web_server(
    app: web.Application, tls: ssl.SSLContext | None = None
) -> AsyncIterator[tuple[str, list[object]]]:
    """An aiohttp server; yields its URL and the list of transports that connected to it."""
    seen: list[object] = []

    @web.middleware
    async def track(request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]):  # type: ignore[no-untyped-def]
        if request.transport not in seen:
            seen.append(request.transport)
        return await handler(request)

    app.middlewares.append(track)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=tls)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    try:
        yield f"{'https' if tls else 'http'}://127.0.0.1:{port}", seen
    finally:
        await runner.cleanup()


@asynccontextmanager
async def raw_server(
    answer: Callable[[int, bytes], bytes | None], *, then_close: bool = False
) -> AsyncIterator[str]:
    """A bare TCP server: `answer(n, request)` gives the bytes for the n-th request on a connection,
    or None to close the connection without answering; `then_close` closes it after each answer."""

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        count = 0
        try:
            while request := await reader.readuntil(b"\r\n\r\n"):
                length = int(request.lower().split(b"content-length: ")[1].split(b"\r\n")[0])
                await reader.readexactly(length)
                count += 1
                reply = answer(count, request)
                if reply is None:
                    break
                writer.write(reply)
                await writer.drain()
                if then_close:
                    break
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        writer.close()

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    try:
        yield f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}/x"
    finally:
        server.close()


def _echo_app() -> web.Application:
    async def echo(request: web.Request) -> web.Response:
        form = await request.post()
        return web.json_response({"got": dict(form)}, headers={"Retry-After": "7"})

    async def chunked(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse()
        response.enable_chunked_encoding()
        await response.prepare(request)
        for part in (b"[1,", b"2,", b"3]"):
            await response.write(part)
        await response.write_eof()
        return response

    async def closing(request: web.Request) -> web.Response:
        return web.Response(body=b"bye", headers={"Connection": "close"})

    app = web.Application()
    app.router.add_post("/echo", echo)
    app.router.add_post("/chunked", chunked)
    app.router.add_post("/closing", closing)
    return app


async def test_a_form_goes_out_and_the_answer_comes_back_on_one_kept_alive_connection() -> None:
    pool = Pool()
    async with web_server(_echo_app()) as (url, seen):
        for n in range(20):
            answer = await pool.request("POST", f"{url}/echo", headers=FORM, body=f"n={n}&名=中".encode())
            assert answer.status == 200
            assert answer.headers["retry-after"] == "7"
            assert json.loads(answer.body) == {"got": {"n": str(n), "名": "中"}}
        assert len(seen) == 1
    await pool.close()


async def test_chunked_and_closing_answers() -> None:
    pool = Pool()
    async with web_server(_echo_app()) as (url, seen):
        assert (await pool.request("POST", f"{url}/chunked", headers=FORM)).body == b"[1,2,3]"
        assert (await pool.request("POST", f"{url}/closing", headers=FORM)).body == b"bye"
        # The server said close: the next request needs, and gets, a new connection.
        assert (await pool.request("POST", f"{url}/chunked", headers=FORM)).body == b"[1,2,3]"
        assert len(seen) == 2
    await pool.close()


OK = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"


async def test_a_connection_dead_before_its_answer_is_replaced_only_for_idempotent_requests() -> None:
    # Every connection answers its first request and dies on the second, as a server that dropped
    # an idle keep-alive connection the moment we reused it.
    async with raw_server(lambda n, _: OK if n == 1 else None) as url:
        pool = Pool()
        assert (await pool.request("POST", url, headers=FORM)).body == b"ok"
        assert (await pool.request("POST", url, headers=FORM)).body == b"ok"  # replaced, answered
        with pytest.raises(TransportError) as refused:
            await pool.request("POST", url, headers=FORM, idempotent=False)
        assert not refused.value.started
        await pool.close()


async def test_an_answer_without_length_ends_with_the_connection() -> None:
    reply = b"HTTP/1.0 200 OK\r\nContent-Type: application/json\r\n\r\n" + b'{"code":0}' * 500
    async with raw_server(lambda n, _: reply, then_close=True) as url:
        pool = Pool()
        for _ in range(2):  # the first connection is closed, so the second call gets a new one
            answer = await pool.request("POST", url, headers=FORM)
            assert answer.status == 200 and answer.body == b'{"code":0}' * 500
        await pool.close()


async def test_an_idle_connection_past_its_time_is_not_reused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(httpclient, "IDLE_SECONDS", 0.0)
    async with web_server(_echo_app()) as (url, seen):
        pool = Pool()
        await pool.request("POST", f"{url}/echo", headers=FORM)
        await asyncio.sleep(0.01)
        await pool.request("POST", f"{url}/echo", headers=FORM)
        assert len(seen) == 2
        await pool.close()


@pytest.mark.parametrize("given_to", ["caller", "pool"])
async def test_a_timed_out_exchange_closes_its_connection(given_to: str) -> None:
    # The caller's own asyncio.timeout, or the pool's `timeout=` (a timer on the answer): either way
    # the stalled connection is thrown away, never handed out again.
    async def stall(request: web.Request) -> web.Response:
        await asyncio.sleep(1)
        return web.Response(body=b"late")

    app = _echo_app()
    app.router.add_post("/stall", stall)
    async with web_server(app) as (url, seen):
        pool = Pool()
        with pytest.raises(TimeoutError):
            if given_to == "pool":
                await pool.request("POST", f"{url}/stall", headers=FORM, timeout=0.2)
            else:
                async with asyncio.timeout(0.2):
                    await pool.request("POST", f"{url}/stall", headers=FORM)
        assert (await pool.request("POST", f"{url}/echo", headers=FORM, timeout=5)).status == 200
        assert len(seen) == 2  # the stalled connection was not handed out again
        await pool.close()


async def test_a_timeout_given_to_the_pool_bounds_the_wait_for_a_slot() -> None:
    release, holding_slot = asyncio.Event(), asyncio.Event()
    called: list[str] = []

    async def hold(request: web.Request) -> web.Response:
        called.append(request.path)
        holding_slot.set()
        await release.wait()
        return web.Response(body=b"held")

    async def echo(request: web.Request) -> web.Response:
        called.append(request.path)
        return web.Response(body=b"echo")

    app = web.Application()
    app.router.add_post("/hold", hold)
    app.router.add_post("/echo", echo)
    async with web_server(app) as (url, _):
        pool = Pool(limit=1)
        holding = asyncio.create_task(pool.request("POST", f"{url}/hold", headers=FORM, timeout=10))
        await holding_slot.wait()
        refused = asyncio.create_task(pool.request("POST", f"{url}/echo", headers=FORM, timeout=0.2))
        await asyncio.wait({refused}, timeout=5)  # not bounded by the pool, it would wait for /hold
        assert refused.done() and isinstance(refused.exception(), TimeoutError)
        release.set()
        assert (await holding).body == b"held"
        assert (await pool.request("POST", f"{url}/echo", headers=FORM, timeout=5)).body == b"echo"
        assert called == ["/hold", "/echo"]  # the call refused a slot never went out
        await pool.close()


async def test_the_pool_bounds_exchanges_in_flight() -> None:
    now = peak = 0

    async def slow(request: web.Request) -> web.Response:
        nonlocal now, peak
        now += 1
        peak = max(peak, now)
        await asyncio.sleep(0.05)
        now -= 1
        return web.Response(body=b"ok")

    app = web.Application()
    app.router.add_post("/slow", slow)
    async with web_server(app) as (url, _):
        pool = Pool(limit=2)
        answers = await asyncio.gather(*(pool.request("POST", f"{url}/slow", headers=FORM) for _ in range(6)))
        assert [a.body for a in answers] == [b"ok"] * 6
        assert peak == 2
        await pool.close()


@pytest.mark.parametrize(
    "reply",
    [
        b"NOT HTTP AT ALL\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nshort",  # then the server closes
        b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n" + b"x" * 100,  # larger than MAX_BODY here
    ],
    ids=["garbage", "cut-short", "too-large"],
)
async def test_a_bad_answer_is_an_error_not_data(reply: bytes, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(httpclient, "MAX_BODY", 50)
    async with raw_server(lambda n, _: reply if n == 1 else None, then_close=True) as url:
        pool = Pool()
        with pytest.raises(TransportError) as failed:
            await pool.request("POST", url, headers=FORM, idempotent=False)
        assert failed.value.started
        await pool.close()


async def test_a_refused_connection_is_an_os_error() -> None:
    server = await asyncio.start_server(lambda r, w: None, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    server.close()
    await server.wait_closed()
    with pytest.raises(OSError):
        await Pool().request("POST", f"http://127.0.0.1:{port}/x", headers=FORM)


def _self_signed(tmp: Path) -> tuple[ssl.SSLContext, ssl.SSLContext]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=1))
        .not_valid_after(now + datetime.timedelta(hours=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), True)
        .sign(key, hashes.SHA256())
    )
    (tmp / "cert.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (tmp / "key.pem").write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    server = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server.load_cert_chain(tmp / "cert.pem", tmp / "key.pem")
    client = ssl.create_default_context(cafile=str(tmp / "cert.pem"))
    return server, client


async def test_https_with_a_trusted_certificate_and_refused_with_an_unknown_one(tmp_path: Path) -> None:
    server_tls, client_tls = _self_signed(tmp_path)
    async with web_server(_echo_app(), tls=server_tls) as (url, _):
        trusted = Pool(ssl_context=client_tls)
        assert (await trusted.request("POST", f"{url}/chunked", headers=FORM)).body == b"[1,2,3]"
        await trusted.close()
        with pytest.raises(ssl.SSLError):  # the system's CAs do not know this certificate
            await Pool().request("POST", f"{url}/chunked", headers=FORM)

"""Work before trust is bounded (issue 13, item 4), against a real engine with `AUTHORIZATION_URL` set.

Unauthenticated bombs and huge bodies are answered 401 at once without the engine inflating or buffering
them (its RSS stays flat); slow or silent clients are disconnected; header size and count are capped; the
connection cap answers 503. Raw sockets play the misbehaving clients.
"""

from __future__ import annotations

import gzip
import socket
import time
import zlib
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.support.engine import EngineProcess

HEADER_TIMEOUT = 1.5
BODY_TIMEOUT = 1.5
MAX_CONNECTIONS = 4
RUN = "/v1/skills/team/skill/run"


@pytest.fixture(scope="module")
def engine(tmp_path_factory: pytest.TempPathFactory, iam: str) -> Iterator[EngineProcess]:
    workdir = tmp_path_factory.mktemp("engine-edge")
    env = {
        "AUTHORIZATION_URL": iam,
        "REQUEST_HEADER_TIMEOUT": f"{HEADER_TIMEOUT}s",
        "REQUEST_BODY_TIMEOUT": f"{BODY_TIMEOUT}s",
        "MAX_CONNECTIONS": str(MAX_CONNECTIONS),
    }
    with EngineProcess(workdir, env) as process:
        yield process


def rss(engine: EngineProcess) -> int:
    assert engine.process is not None
    for line in Path(f"/proc/{engine.process.pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS")


def connect(engine: EngineProcess) -> socket.socket:
    return socket.create_connection(("127.0.0.1", engine.port), timeout=10)


def read_until_closed(sock: socket.socket, limit: float = 10.0) -> tuple[bytes, float]:
    """Everything the server sends until it closes the connection, and how long that took."""
    started = time.monotonic()
    sock.settimeout(limit)
    data = b""
    while True:
        try:
            chunk = sock.recv(65536)
        except ConnectionResetError:
            break
        if not chunk:
            break
        data += chunk
    return data, time.monotonic() - started


BOMB = b"0" * (200 * 1024 * 1024)


@pytest.mark.parametrize(
    ("encoding", "compress"),
    [("gzip", lambda b: gzip.compress(b, compresslevel=9)), ("deflate", lambda b: zlib.compress(b, 9))],
)
def test_unauthenticated_bombs_are_401_without_inflating(
    engine: EngineProcess, encoding: str, compress: object
) -> None:
    assert callable(compress)
    bomb = compress(BOMB)
    assert len(bomb) < 1024 * 1024  # 200 MiB when inflated
    before = rss(engine)
    with httpx.Client(base_url=engine.url, timeout=30) as client:
        for _ in range(5):
            started = time.monotonic()
            response = client.post(
                RUN, content=bomb, headers={"content-type": "application/json", "content-encoding": encoding}
            )
            elapsed = time.monotonic() - started
            assert (response.status_code, response.text) == (401, "Bearer token expected")
            assert elapsed < 1.0
    assert rss(engine) - before < 20 * 1024 * 1024


def test_unauthenticated_60_mib_bodies_are_401_without_buffering(engine: EngineProcess) -> None:
    body = b"x" * (60 * 1024 * 1024)
    before = rss(engine)
    with httpx.Client(base_url=engine.url, timeout=30) as client:
        for _ in range(3):
            response = client.post(RUN, content=body, headers={"content-type": "application/json"})
            assert (response.status_code, response.text) == (401, "Bearer token expected")

            def chunks() -> Iterator[bytes]:  # no content-length: the body streams in
                for start in range(0, len(body), 1024 * 1024):
                    yield body[start : start + 1024 * 1024]

            streamed = client.post(RUN, content=chunks(), headers={"content-type": "application/json"})
            assert streamed.status_code == 401
    assert rss(engine) - before < 20 * 1024 * 1024


def test_authenticated_bombs_are_cut_off_at_the_body_limit(engine: EngineProcess) -> None:
    bomb = gzip.compress(BOMB, compresslevel=9)
    headers = {
        "content-type": "application/json",
        "content-encoding": "gzip",
        "authorization": "Bearer good-token",
    }
    response = httpx.post(f"{engine.url}/csi/v1/chunk", content=bomb, headers=headers, timeout=60)
    assert (response.status_code, response.text) == (
        413,
        "Failed to buffer the request body: length limit exceeded",
    )


def test_slowloris_is_disconnected(engine: EngineProcess) -> None:
    with connect(engine) as sock:
        sock.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n")
        started = time.monotonic()
        answer = b""
        try:
            while time.monotonic() - started < 10:
                sock.sendall(b"X-Slow: 1\r\n")  # a header line now and then: never a complete head
                sock.settimeout(0.3)
                try:
                    chunk = sock.recv(65536)
                except TimeoutError:
                    continue
                answer += chunk
                if not chunk:
                    break
        except (BrokenPipeError, ConnectionResetError):
            pass
        elapsed = time.monotonic() - started
    assert answer.startswith(b"HTTP/1.1 408 Request Timeout\r\n")
    assert HEADER_TIMEOUT - 0.2 < elapsed < HEADER_TIMEOUT + 3


def test_silent_connection_is_closed(engine: EngineProcess) -> None:
    with connect(engine) as sock:
        data, elapsed = read_until_closed(sock)
    assert data == b""
    assert HEADER_TIMEOUT - 0.2 < elapsed < HEADER_TIMEOUT + 3


def test_stalled_body_is_disconnected(engine: EngineProcess) -> None:
    with connect(engine) as sock:
        sock.sendall(
            b"POST /csi/v1/chunk HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer good-token\r\n"
            b"Content-Type: application/json\r\nContent-Length: 1000\r\n\r\n[{"
        )
        data, elapsed = read_until_closed(sock)
    assert BODY_TIMEOUT - 0.2 < elapsed < BODY_TIMEOUT + 3
    assert b"200 OK" not in data


def test_idle_keep_alive_connection_is_kept_and_reused(engine: EngineProcess) -> None:
    with httpx.Client(base_url=engine.url, timeout=10) as client:
        assert client.get("/health").text == "ok"
        time.sleep(HEADER_TIMEOUT + 0.5)  # between requests the keep-alive timeout (75 s) applies
        assert client.get("/health").text == "ok"
        assert client.get("/health").text == "ok"


def test_too_many_or_too_large_headers_are_431(engine: EngineProcess) -> None:
    many = "".join(f"X-Header-{i}: {i}\r\n" for i in range(150)).encode()
    large = b"X-Large: " + b"a" * (100 * 1024) + b"\r\n"
    for extra in (many, large):
        with connect(engine) as sock:
            sock.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n" + extra + b"\r\n")
            data, _ = read_until_closed(sock)
        assert data.startswith(b"HTTP/1.1 431 Request Header Fields Too Large\r\n")
    with httpx.Client(base_url=engine.url, timeout=10) as client:
        headers = {f"x-header-{i}": str(i) for i in range(40)}
        assert client.get("/health", headers=headers).status_code == 200


def _get_health(sock: socket.socket) -> bytes:
    sock.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
    sock.settimeout(10)
    data = b""
    while b"\r\n\r\n" not in data or not data.endswith((b"ok", b"operators.")):
        chunk = sock.recv(65536)
        if not chunk:
            break
        data += chunk
    return data


def test_connections_beyond_the_cap_get_503(engine: EngineProcess) -> None:
    held = [connect(engine) for _ in range(MAX_CONNECTIONS)]
    try:
        for sock in held:
            assert _get_health(sock).startswith(b"HTTP/1.1 200 OK\r\n")
        with connect(engine) as extra:
            answer = _get_health(extra)
            assert answer.startswith(b"HTTP/1.1 503 Service Unavailable\r\n")
            assert b"retry-after: 1\r\n" in answer
            assert b"connection: close\r\n" in answer
            assert answer.endswith(
                b"The Kernel has reached its maximum of 4 open connections. Please try again later, if the "
                b"situation persists you may want to contact the operators."
            )
        for sock in held:  # the held connections keep working
            assert _get_health(sock).startswith(b"HTTP/1.1 200 OK\r\n")
    finally:
        for sock in held:
            sock.close()
    time.sleep(0.5)
    assert httpx.get(f"{engine.url}/health", timeout=10).text == "ok"

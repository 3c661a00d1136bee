"""aliasip_api.rest over real HTTPS: a TLS server in this process on 127.0.0.1.

The credentials of aliasip_api.kubeconfig on the wire (CA, client certificate, bearer
token, server name), the error mapping (no answer: ``ApiUnavailable``; an error status:
``ApiError``), no hidden retries, and the agent's watch stream over urllib3.
"""

from __future__ import annotations

import contextlib
import json
import socket
import ssl
import sys
import threading
import time
import urllib.parse
from collections.abc import Generator, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import yaml

from aliasip_api.kubeconfig import Configuration, load_kubeconfig
from aliasip_api.rest import ALIASIPS, MERGE_PATCH, ApiError, ApiUnavailable, RestClient
from aliasip_nodeagent.kube import KubeApi, StreamRestart
from tests.unit.tls import Certs, common_name, make_certs

TIMEOUT_S = 0.5
HELD_S = 4.0  # how long the "held" watch stays open and quiet


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: Server

    def log_message(self, format: str, *args: Any) -> None:  # quiet
        pass

    def reply(self, status: int, body: Any) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def seen(self, body: Any = None) -> dict[str, Any]:
        tls = isinstance(self.connection, ssl.SSLSocket)
        client_cn = common_name(self.connection.getpeercert()) if tls else None
        return {
            "method": self.command,
            "path": self.path,
            "authorization": self.headers.get("Authorization"),
            "content_type": self.headers.get("Content-Type"),
            "user_agent": self.headers.get("User-Agent"),
            "client_cn": client_cn,
            "body": body,
        }

    def do_GET(self) -> None:
        self.server.count += 1
        url = urllib.parse.urlsplit(self.path)
        if url.path == "/slow":
            time.sleep(TIMEOUT_S * 3)
            self.reply(200, {})
        elif url.path == "/missing":
            self.reply(404, {"kind": "Status", "reason": "NotFound", "code": 404})
        elif url.path == ALIASIPS and "watch=1" in (url.query or ""):
            self.watch(urllib.parse.parse_qs(url.query)["resourceVersion"][0])
        else:
            self.reply(200, self.seen())

    def do_PATCH(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        self.reply(200, self.seen(json.loads(self.rfile.read(length))))

    def watch(self, resource_version: str) -> None:
        """Three events in awkwardly cut chunks; "gone" ends in an ERROR event (410)."""
        events: list[dict[str, Any]] = [
            {"type": "ADDED", "object": {"metadata": {"name": "a", "resourceVersion": "2"}}},
            {"type": "BOOKMARK", "object": {"metadata": {"resourceVersion": "3"}}},
        ]
        if resource_version == "gone":
            events.append({"type": "ERROR", "object": {"code": 410, "reason": "Expired"}})
        if resource_version == "held":  # a stream that stays open, quiet, as a late one does
            events = events[:1]
        stream = b"".join(json.dumps(e).encode() + b"\n" for e in events)
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        for start in range(0, len(stream), 37):
            piece = stream[start : start + 37]
            self.wfile.write(b"%x\r\n%s\r\n" % (len(piece), piece))
            self.wfile.flush()
        if resource_version == "held":
            time.sleep(HELD_S)
        with contextlib.suppress(OSError):  # the client may end a held stream on purpose
            self.wfile.write(b"0\r\n\r\n")


class Server(ThreadingHTTPServer):
    daemon_threads = True
    count = 0

    def __init__(self, context: ssl.SSLContext | None) -> None:
        super().__init__(("127.0.0.1", 0), Handler)
        self.context = context

    def finish_request(self, request: Any, client_address: Any) -> None:
        # The handshake in the request's thread, so a failing client never stalls accept().
        request.settimeout(5)
        if self.context is not None:
            try:
                request = self.context.wrap_socket(request, server_side=True)
            except OSError:
                request.close()
                return
        super().finish_request(request, client_address)

    @property
    def port(self) -> int:
        return int(self.server_address[1])

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client that gave up before the answer (the slow-answer test's, on purpose)
        is no error of the server's: socketserver would print its traceback, possibly
        after the session ended."""
        if isinstance(sys.exc_info()[1], (BrokenPipeError, ConnectionResetError)):
            return
        super().handle_error(request, client_address)


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> Certs:
    return make_certs(tmp_path_factory.mktemp("certs"))


def serve(context: ssl.SSLContext | None) -> Iterator[Server]:
    server = Server(context)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


@pytest.fixture(scope="module")
def https(certs: Certs) -> Iterator[Server]:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH, cafile=str(certs.path("ca.crt")))
    context.verify_mode = ssl.CERT_OPTIONAL  # a client certificate, when given, is checked
    context.load_cert_chain(certs.path("server.crt"), certs.path("server.key"))
    yield from serve(context)


@pytest.fixture(scope="module")
def http() -> Iterator[Server]:
    yield from serve(None)


def configure(
    tmp_path: Path,
    server: str,
    cluster: dict[str, Any] | None = None,
    user: dict[str, Any] | None = None,
) -> Configuration:
    path = tmp_path / "kubeconfig"
    path.write_text(
        yaml.safe_dump(
            {
                "clusters": [{"name": "c", "cluster": {"server": server, **(cluster or {})}}],
                "users": [{"name": "u", "user": user or {}}],
                "contexts": [{"name": "x", "context": {"cluster": "c", "user": "u"}}],
                "current-context": "x",
            }
        )
    )
    return load_kubeconfig(path)


def test_ca_data_client_certificate_data_and_token(
    tmp_path: Path, certs: Certs, https: Server
) -> None:
    cfg = configure(
        tmp_path,
        f"https://127.0.0.1:{https.port}",
        {"certificate-authority-data": certs.b64("ca.crt")},
        {
            "token": "tok",
            "client-certificate-data": certs.b64("client.crt"),
            "client-key-data": certs.b64("client.key"),
        },
    )
    client = RestClient(cfg, "aliasip-test", timeout_s=TIMEOUT_S)
    seen = client.request("GET", "/api/v1/x", params={"a": "b c"})
    assert seen["path"] == "/api/v1/x?a=b+c"
    assert seen["authorization"] == "Bearer tok"
    assert seen["user_agent"] == "aliasip-test"
    assert seen["client_cn"] == "system:node:test"
    patched = client.request("PATCH", "/p", {"status": {"k": 1}}, content_type=MERGE_PATCH)
    assert patched["body"] == {"status": {"k": 1}}
    assert patched["content_type"] == MERGE_PATCH


def test_tls_server_name_is_what_the_certificate_is_checked_against(
    tmp_path: Path, certs: Certs, https: Server
) -> None:
    ca = {"certificate-authority": str(certs.path("ca.crt"))}
    url = f"https://127.0.0.1:{https.port}"
    good = configure(tmp_path, url, {**ca, "tls-server-name": "apiserver.test"})
    assert RestClient(good, "t", TIMEOUT_S).request("GET", "/")["client_cn"] is None
    bad = configure(tmp_path, url, {**ca, "tls-server-name": "other.test"})
    with pytest.raises(ApiUnavailable, match="certificate"):
        RestClient(bad, "t", TIMEOUT_S).request("GET", "/")


@pytest.mark.filterwarnings("ignore::urllib3.exceptions.InsecureRequestWarning")
def test_an_untrusted_server_is_no_answer_unless_verification_is_skipped(
    tmp_path: Path, https: Server
) -> None:
    url = f"https://127.0.0.1:{https.port}"
    with pytest.raises(ApiUnavailable, match="certificate verify failed"):
        RestClient(configure(tmp_path, url), "t", TIMEOUT_S).request("GET", "/")
    insecure = configure(tmp_path, url, {"insecure-skip-tls-verify": True})
    assert RestClient(insecure, "t", TIMEOUT_S).request("GET", "/")["method"] == "GET"


def test_an_error_status_is_an_api_error(tmp_path: Path, http: Server) -> None:
    client = RestClient(configure(tmp_path, f"http://127.0.0.1:{http.port}"), "t", TIMEOUT_S)
    with pytest.raises(ApiError) as caught:
        client.request("GET", "/missing")
    assert (caught.value.status, caught.value.reason) == (404, "Not Found")
    assert "NotFound" in str(caught.value)


def test_a_slow_answer_is_no_answer_and_is_not_retried(tmp_path: Path, http: Server) -> None:
    client = RestClient(configure(tmp_path, f"http://127.0.0.1:{http.port}"), "t", TIMEOUT_S)
    before = http.count
    started = time.monotonic()
    with pytest.raises(ApiUnavailable, match="ReadTimeout"):
        client.request("GET", "/slow")
    assert time.monotonic() - started < TIMEOUT_S * 2.5
    assert http.count == before + 1


def test_a_refused_connection_is_no_answer(tmp_path: Path) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # nothing listens there once closed
    client = RestClient(configure(tmp_path, f"http://127.0.0.1:{port}"), "t", TIMEOUT_S)
    with pytest.raises(ApiUnavailable, match="GET /x"):
        client.request("GET", "/x")


def test_each_thread_has_its_own_pool(tmp_path: Path, http: Server) -> None:
    client = RestClient(configure(tmp_path, f"http://127.0.0.1:{http.port}"), "t", TIMEOUT_S)
    pools: list[object] = []
    worker = threading.Thread(target=lambda: pools.append(client.transport()))
    worker.start()
    worker.join()
    assert client.transport() is client.transport()
    assert pools[0] is not client.transport()


def test_the_agent_watch_streams_events_over_tls(
    tmp_path: Path, certs: Certs, https: Server
) -> None:
    cfg = configure(
        tmp_path,
        f"https://127.0.0.1:{https.port}",
        {"certificate-authority-data": certs.b64("ca.crt")},
    )
    api = KubeApi(cfg, timeout_s=TIMEOUT_S)
    events = list(api.watch_aliasips("1", timeout_s=5))
    assert [e["type"] for e in events] == ["ADDED", "BOOKMARK"]
    assert events[0]["object"]["metadata"]["name"] == "a"
    with pytest.raises(ApiError) as caught:
        list(api.watch_aliasips("gone", timeout_s=5))
    assert caught.value.status == 410
    # A watch left half-read gives its connection up; the next call still works.
    stream = api.watch_aliasips("1", timeout_s=5)
    next(stream)
    assert isinstance(stream, Generator)
    stream.close()
    assert api.request("GET", "/after")["path"] == "/after"


@pytest.mark.parametrize("tls", [False, True], ids=["http", "https"])
def test_a_stream_ended_on_purpose_just_ends_and_gives_up_its_connection(
    tmp_path: Path, certs: Certs, http: Server, https: Server, tls: bool
) -> None:
    """``StreamRestart.ask`` from another thread wakes a watch blocked in its read: the
    generator ends as a timed-out watch does (no error, so no relist), the shut socket
    never goes back into the pool, and asking with no stream open is a no-op."""
    if tls:
        cluster = {"certificate-authority-data": certs.b64("ca.crt")}
        cfg = configure(tmp_path, f"https://127.0.0.1:{https.port}", cluster)
    else:
        cfg = configure(tmp_path, f"http://127.0.0.1:{http.port}")
    api = KubeApi(cfg, timeout_s=TIMEOUT_S)
    restart = StreamRestart()
    assert not restart.ask()
    got: list[str] = []
    ended = threading.Event()

    def watch() -> None:
        for event in api.watch_aliasips("held", timeout_s=30, restart=restart):
            got.append(str(event["type"]))
        ended.set()

    worker = threading.Thread(target=watch)
    started = time.monotonic()
    worker.start()
    deadline = time.monotonic() + 5
    while not got and time.monotonic() < deadline:
        time.sleep(0.01)
    assert got == ["ADDED"]
    assert restart.ask()
    assert ended.wait(HELD_S / 2), "the stream did not end when asked"
    assert time.monotonic() - started < HELD_S
    worker.join(5)
    assert not restart.ask()  # nothing open any more
    assert api.request("GET", "/after")["path"] == "/after"

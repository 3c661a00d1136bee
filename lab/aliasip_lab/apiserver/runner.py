"""Running the embedded API server: in a loop, on a thread, or as ``aliasip-lab apiserver``.

- ``serve()``: an async context manager that serves on a socket in the caller's loop.
- ``ServerThread``: the server on a thread with its own event loop, so that a client
  sharing the process (kopf, which cancels every task of its own loop at shutdown) never
  takes the server down with it, and no synchronous call blocks the server.
- ``main()``: the process entry point. It writes a kubeconfig for the clients (plain
  http, no credentials: kubectl and the Python clients accept that), prints one line
  ``serving http://ADDR:PORT`` once it accepts connections, and serves until SIGTERM or
  SIGINT.

The listening socket is created by the caller or, with ``netns=``, inside a named network
namespace: a socket keeps the namespace it was created in, so a test can serve inside a
private namespace from an ordinary thread.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import ipaddress
import os
import signal
import socket
import sys
import tempfile
import threading
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import yaml
from aiohttp import web

from aliasip_lab.apiserver.access import Access
from aliasip_lab.apiserver.journal import StateJournal
from aliasip_lab.apiserver.operations import Api
from aliasip_lab.apiserver.server import ApiServer, ServerOptions
from aliasip_lab.apiserver.store import Store
from aliasip_lab.apiserver.tls import TlsFiles, make_serving_files
from aliasip_lab.nsenter import netns as enter_netns

T = TypeVar("T")
SHUTDOWN_TIMEOUT_S = 2.0


@dataclass(frozen=True)
class Settings:
    """What a server keeps and how it paces watches."""

    history: int = 1000
    bookmark_interval_s: float = 60.0
    min_request_timeout_s: float = 1800.0
    event_ttl_s: float = 3600.0
    watch_queue: int = 10_000
    # Keep objects across restarts in this file (as etcd keeps them for kube-apiserver).
    state: Path | None = None
    # Authentication and RBAC (``--authorization-mode RBAC``); None: no checks at all.
    access: Access | None = None
    # Serve HTTPS with these (an authenticating API needs them: clients send tokens only
    # over TLS); None: plain HTTP.
    tls: TlsFiles | None = None


@dataclass
class Running:
    """A serving server: where it listens and its state (touch it only on its loop)."""

    url: str
    host: str
    port: int
    api: Api
    server: ApiServer


def url_for(host: str, port: int, tls: bool = False) -> str:
    shown = f"[{host}]" if ":" in host else host
    return f"{'https' if tls else 'http'}://{shown}:{port}"


def listen_socket(host: str, port: int, netns: str | None = None) -> socket.socket:
    """A listening TCP socket, created inside ``netns`` when one is named."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with enter_netns(netns) if netns else contextlib.nullcontext():
        sock = socket.socket(family, socket.SOCK_STREAM)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind((host, port))
            sock.listen(512)
            sock.setblocking(False)
        except BaseException:
            sock.close()
            raise
    return sock


@contextlib.asynccontextmanager
async def serve(sock: socket.socket, settings: Settings = Settings()) -> AsyncIterator[Running]:
    """Serve on ``sock`` (already listening) until the ``async with`` body ends."""
    journal = StateJournal(settings.state) if settings.state is not None else None
    store = Store(history=settings.history)
    if journal is not None:
        store.restore(*journal.load())
        journal.start(store)
        store.journal = journal.append
    api = Api(store, event_ttl_s=settings.event_ttl_s)
    if settings.access is not None:
        settings.access.bootstrap(api)
    server = ApiServer(
        api,
        ServerOptions(
            bookmark_interval_s=settings.bookmark_interval_s,
            min_request_timeout_s=settings.min_request_timeout_s,
            watch_queue=settings.watch_queue,
        ),
        settings.access,
    )
    host, port = sock.getsockname()[:2]
    server.address = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    runner = web.AppRunner(
        server.app(),
        handle_signals=False,
        access_log=None,
        handler_cancellation=True,
        shutdown_timeout=SHUTDOWN_TIMEOUT_S,
    )
    await runner.setup()
    try:
        context = settings.tls.server_context() if settings.tls is not None else None
        site = web.SockSite(runner, sock, ssl_context=context)
        await site.start()
        yield Running(url_for(host, port, context is not None), host, port, api, server)
    finally:
        server.shutdown()
        await runner.cleanup()
        if journal is not None:
            journal.close()


class ServerThread:
    """The server on its own thread and event loop (see the module docstring)."""

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        netns: str | None = None,
        settings: Settings = Settings(),
    ) -> None:
        self._sock = listen_socket(host, port, netns)
        self._settings = settings
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._stop: asyncio.Event | None = None
        self._running: Running | None = None
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._main, name="aliasip-apiserver", daemon=True)

    @property
    def running(self) -> Running:
        if self._running is None:
            raise RuntimeError("the server is not running")
        return self._running

    @property
    def url(self) -> str:
        return self.running.url

    def start(self, timeout_s: float = 10.0) -> Running:
        self._thread.start()
        if not self._ready.wait(timeout_s):
            raise TimeoutError("the API server did not start in time")
        if self._error is not None:
            raise RuntimeError("the API server failed to start") from self._error
        return self.running

    def call(self, fn: Callable[[Api], T], timeout_s: float = 10.0) -> T:
        """Run ``fn(api)`` on the server's loop (its state is not thread-safe) and return."""

        async def run() -> T:
            return fn(self.running.api)

        return asyncio.run_coroutine_threadsafe(run(), self._loop).result(timeout_s)

    def stop(self, timeout_s: float = 10.0) -> None:
        if self._thread.is_alive() and self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
            self._thread.join(timeout_s)
        if not self._thread.is_alive():
            self._loop.close()
        self._sock.close()

    def __enter__(self) -> ServerThread:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _main(self) -> None:
        asyncio.set_event_loop(self._loop)
        try:
            self._loop.run_until_complete(self._serve())
        except BaseException as exc:
            self._error = exc
            self._ready.set()

    async def _serve(self) -> None:
        self._stop = asyncio.Event()
        async with serve(self._sock, self._settings) as running:
            self._running = running
            self._ready.set()
            await self._stop.wait()


# --------------------------------------------------------------------------- process


def kubeconfig(
    url: str, namespace: str = "default", token: str | None = None, ca: Path | None = None
) -> str:
    """A kubeconfig for ``url``: one cluster (trusting the CA certificate ``ca``), one
    user (with ``token``, else without credentials), one context."""
    cluster: dict[str, str] = {"server": url}
    if ca is not None:
        cluster["certificate-authority-data"] = base64.b64encode(ca.read_bytes()).decode()
    return yaml.safe_dump(
        {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [{"name": "aliasip-lab", "cluster": cluster}],
            "users": [{"name": "aliasip-lab", "user": {"token": token} if token else {}}],
            "contexts": [
                {
                    "name": "aliasip-lab",
                    "context": {
                        "cluster": "aliasip-lab",
                        "user": "aliasip-lab",
                        "namespace": namespace,
                    },
                }
            ],
            "current-context": "aliasip-lab",
            "preferences": {},
        },
        sort_keys=False,
    )


def write_kubeconfig(
    path: Path, url: str, token: str | None = None, ca: Path | None = None
) -> None:
    """Write atomically: a client polling for the file never reads half of it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "w") as out:
            out.write(kubeconfig(url, token=token, ca=ca))
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def parse_listen(text: str) -> tuple[str, int]:
    """``ADDR:PORT`` or ``[IPV6]:PORT``."""
    host, sep, port_text = text.rpartition(":")
    if not sep or not port_text.isdigit():
        raise ValueError(f"--listen wants ADDR:PORT, got {text!r}")
    host = host.strip("[]")
    ipaddress.ip_address(host)
    port = int(port_text)
    if not 0 <= port <= 65535:
        raise ValueError(f"port out of range: {port}")
    return host, port


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="aliasip-lab apiserver",
        description="The lab's embedded Kubernetes API server (plain http; no checks unless "
        "--authorization-mode RBAC).",
    )
    parser.add_argument(
        "--listen", required=True, metavar="ADDR:PORT", help="port 0: any free port"
    )
    parser.add_argument("--kubeconfig", type=Path, help="write a kubeconfig for clients here")
    parser.add_argument(
        "--history",
        type=int,
        default=Settings.history,
        help="changes kept per resource for watch resume",
    )
    parser.add_argument(
        "--bookmark-interval", type=float, default=Settings.bookmark_interval_s, metavar="S"
    )
    parser.add_argument(
        "--min-request-timeout", type=float, default=Settings.min_request_timeout_s, metavar="S"
    )
    parser.add_argument("--event-ttl", type=float, default=Settings.event_ttl_s, metavar="S")
    parser.add_argument(
        "--state",
        type=Path,
        metavar="PATH",
        help="keep objects in this file across restarts (default: in memory only)",
    )
    parser.add_argument(
        "--authorization-mode",
        choices=("AlwaysAllow", "RBAC"),
        default="AlwaysAllow",
        help="RBAC: authenticate every request and authorize it as kube-apiserver does",
    )
    parser.add_argument(
        "--token-auth-file",
        type=Path,
        metavar="PATH",
        help="static tokens (token,user,uid[,groups]); default: a fresh admin token, "
        "written into --kubeconfig",
    )
    parser.add_argument(
        "--service-account-key-file",
        type=Path,
        metavar="PATH",
        help="at least 32 bytes that sign service-account tokens; default: fresh ones",
    )
    parser.add_argument(
        "--anonymous-auth",
        choices=("true", "false"),
        default="true",
        help="requests without a token are system:anonymous (else 401)",
    )
    args = parser.parse_args(argv)
    try:
        host, port = parse_listen(args.listen)
        if args.history < 1 or args.bookmark_interval <= 0 or args.min_request_timeout <= 0:
            raise ValueError(
                "--history, --bookmark-interval and --min-request-timeout must be positive"
            )
        access = tls = None
        if args.authorization_mode == "RBAC":
            access = Access.create(
                args.token_auth_file, args.service_account_key_file, args.anonymous_auth == "true"
            )
            if args.kubeconfig is None:
                raise ValueError("--authorization-mode RBAC needs --kubeconfig (its CA and token)")
            tls = make_serving_files(args.kubeconfig.parent / "pki", [host, "localhost"])
        sock = listen_socket(host, port)
    except (ValueError, OSError) as exc:
        print(f"aliasip-lab apiserver: {exc}", file=sys.stderr)
        return 2
    settings = Settings(
        history=args.history,
        bookmark_interval_s=args.bookmark_interval,
        min_request_timeout_s=args.min_request_timeout,
        event_ttl_s=args.event_ttl,
        state=args.state,
        access=access,
        tls=tls,
    )
    try:
        asyncio.run(_serve_until_signalled(sock, settings, args.kubeconfig))
    finally:
        sock.close()
    return 0


async def _serve_until_signalled(
    sock: socket.socket, settings: Settings, config: Path | None
) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    async with serve(sock, settings) as running:
        if config is not None:
            admin = settings.access.admin if settings.access is not None else None
            token = admin.token if admin is not None else None
            ca = settings.tls.ca if settings.tls is not None else None
            write_kubeconfig(config, running.url, token, ca)
        print(f"serving {running.url}", flush=True)
        await stop.wait()

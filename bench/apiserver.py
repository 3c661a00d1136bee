"""Embedded API server benchmark: requests/s, watch latency, cost per request over time.

The server runs as its own process (``aliasip-lab apiserver``, as the lab runs it) inside
a private network namespace; the load comes from this process over keep-alive HTTP
connections opened inside the same namespace. Nothing touches the host namespace.

With ``--objects`` AliasIPs stored (the project's CRD, each with a status as agents write
it), it measures:

- GET one object, LIST all of them, LIST with a label selector matching 1 %, and PATCH
  (a merge patch of ``status`` through ``/status``, what agents and the operator send):
  requests/s over one connection (sequential) and over ``--connections`` connections;
- watch latency: from just before a PATCH is sent to the arrival of its MODIFIED event
  on an open watch (median, p99, max);
- cost per request early and late: the median GET time over ``--probe`` GETs right after
  start-up, and again after ``--requests`` more mixed requests (GET/LIST/PATCH/404);
  plus the server's resident memory at both points.

Results go to ``bench/results/apiserver.{json,md}``.

    .venv/bin/python -m bench.apiserver            # as root, about a minute
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import http.client
import json
import os
import platform
import queue
import random
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from aliasip_lab.lan import private_namespace
from aliasip_lab.nsenter import netns

ADDRESS = "198.19.0.1"
RESULTS_DIR = Path(__file__).resolve().parent / "results"
CRD = Path(__file__).resolve().parents[1] / "crds" / "aliasip.yaml"
AIPS = "/apis/aliasip.io/v1alpha1/aliasips"
CRDS = "/apis/apiextensions.k8s.io/v1/customresourcedefinitions"
MERGE = "application/merge-patch+json"
COMMAND = ".venv/bin/python -m bench.apiserver"
START_TIMEOUT_S = 20.0

Json = dict[str, Any]


class Conn:
    """One keep-alive HTTP connection, opened inside the namespace."""

    def __init__(self, namespace: str, port: int) -> None:
        self.conn = http.client.HTTPConnection(ADDRESS, port, timeout=30)
        with netns(namespace):
            self.conn.connect()

    def call(
        self, method: str, path: str, body: Any = None, content_type: str = ""
    ) -> tuple[int, bytes]:
        data = None if body is None else json.dumps(body).encode()
        headers = {"Content-Type": content_type or "application/json"} if data else {}
        self.conn.request(method, path, data, headers)
        response = self.conn.getresponse()
        return response.status, response.read()

    def close(self) -> None:
        self.conn.close()


@dataclass
class Server:
    namespace: str
    port: int
    proc: subprocess.Popen[str]

    def rss_kib(self) -> int:
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
        return -1


@contextlib.contextmanager
def server(history: int) -> Iterator[Server]:
    with private_namespace("bench", ADDRESS) as namespace:
        proc = subprocess.Popen(
            ["ip", "netns", "exec", namespace, sys.executable, "-m", "aliasip_lab.apiserver",
             "--listen", f"{ADDRESS}:0", "--history", str(history)],
            stdout=subprocess.PIPE, text=True,
        )  # fmt: skip
        try:
            line = _read_line(proc, START_TIMEOUT_S)
            if not line.startswith("serving "):
                raise RuntimeError(f"the API server did not start: {line!r}")
            yield Server(namespace, int(line.rsplit(":", 1)[1]), proc)
        finally:
            proc.terminate()
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)


def _read_line(proc: subprocess.Popen[str], timeout: float) -> str:
    got: queue.Queue[str] = queue.Queue()
    assert proc.stdout is not None
    stdout = proc.stdout
    threading.Thread(target=lambda: got.put(stdout.readline()), daemon=True).start()
    try:
        return got.get(timeout=timeout).strip()
    except queue.Empty:
        return ""


def aliasip(i: int) -> Json:
    return {
        "apiVersion": "aliasip.io/v1alpha1",
        "kind": "AliasIP",
        "metadata": {"name": f"aip-{i:05d}", "labels": {"shard": str(i % 100)}},
        "spec": {
            "addresses": [f"198.18.{i // 250}.{i % 250 + 1}/16"],
            "nodes": ["node1", "node2", "node3"],
        },
    }


def status(i: int, epoch: int) -> Json:
    stamp = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return {
        "status": {
            "activeNode": "node1",
            "phase": "Active",
            "epoch": epoch,
            "nodes": {
                n: {
                    "state": "holding" if n == "node1" else "standby",
                    "epoch": epoch,
                    "updatedAt": stamp,
                }
                for n in ("node1", "node2", "node3")
            },
        }
    }


def populate(conn: Conn, count: int) -> None:
    code, body = conn.call("POST", CRDS, yaml.safe_load(CRD.read_text()))
    if code != 201:
        raise RuntimeError(f"CRD: {code} {body[:200]!r}")
    for i in range(count):
        code, body = conn.call("POST", AIPS, aliasip(i))
        if code != 201:
            raise RuntimeError(f"create: {code} {body[:200]!r}")
        conn.call("PATCH", f"{AIPS}/aip-{i:05d}/status", status(i, 1), MERGE)


# --------------------------------------------------------------------------- measurements


def timed(
    conn: Conn, count: int, request: Callable[[int], tuple[str, str, Any, str]]
) -> list[float]:
    """Seconds per request, one after the other on one connection."""
    times = []
    for i in range(count):
        method, path, body, content_type = request(i)
        start = time.perf_counter()
        code, _ = conn.call(method, path, body, content_type)
        times.append(time.perf_counter() - start)
        if code not in (200, 404):
            raise RuntimeError(f"{method} {path}: {code}")
    return times


def throughput(
    srv: Server,
    connections: int,
    per_connection: int,
    request: Callable[[int], tuple[str, str, Any, str]],
) -> float:
    """Requests/s with ``connections`` connections, each on its own thread."""
    conns = [Conn(srv.namespace, srv.port) for _ in range(connections)]
    barrier = threading.Barrier(connections + 1)
    errors: list[BaseException] = []

    def run(conn: Conn, offset: int) -> None:
        barrier.wait(30)
        try:
            timed(conn, per_connection, lambda i: request(offset + i))
        except BaseException as exc:
            errors.append(exc)

    threads = [
        threading.Thread(target=run, args=(c, n * per_connection)) for n, c in enumerate(conns)
    ]
    for thread in threads:
        thread.start()
    barrier.wait(30)
    start = time.perf_counter()
    for thread in threads:
        thread.join(600)
    elapsed = time.perf_counter() - start
    for conn in conns:
        conn.close()
    if errors:
        raise errors[0]
    return connections * per_connection / elapsed


def watch_latency(srv: Server, objects: int, samples: int) -> list[float]:
    """PATCH sent -> MODIFIED received on an open watch, in seconds."""
    conn = Conn(srv.namespace, srv.port)
    _, body = conn.call("GET", f"{AIPS}?labelSelector=shard%3D0")
    start_rv = json.loads(body)["metadata"]["resourceVersion"]
    watcher = http.client.HTTPConnection(ADDRESS, srv.port, timeout=30)
    with netns(srv.namespace):
        watcher.connect()
    watcher.request("GET", f"{AIPS}?watch=1&resourceVersion={start_rv}")
    response = watcher.getresponse()
    arrivals: queue.Queue[tuple[str, float]] = queue.Queue()

    def read() -> None:
        with contextlib.suppress(OSError, ValueError, http.client.HTTPException, AttributeError):
            while line := response.readline():
                event = json.loads(line)
                arrivals.put((event["object"]["metadata"]["resourceVersion"], time.perf_counter()))

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    latencies = []
    try:
        for n in range(samples):
            i = random.randrange(objects)
            sent = time.perf_counter()
            # A fresh epoch: a patch that changes nothing is stored as nothing (no event).
            epoch = 1_000_000 + n
            code, body = conn.call("PATCH", f"{AIPS}/aip-{i:05d}/status", status(i, epoch), MERGE)
            if code != 200:
                raise RuntimeError(f"PATCH: {code}")
            rv = json.loads(body)["metadata"]["resourceVersion"]
            for _ in range(samples + 1):  # one event per PATCH: a bound, never reached
                got, at = arrivals.get(timeout=10)
                if got == rv:
                    latencies.append(at - sent)
                    break
            else:
                raise RuntimeError(f"no MODIFIED event for resourceVersion {rv}")
    finally:
        if watcher.sock is not None:
            with contextlib.suppress(OSError):
                watcher.sock.shutdown(2)
        reader.join(5)
        watcher.close()
        conn.close()
    return latencies


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def ms(seconds: float) -> float:
    return round(seconds * 1000, 3)


def run(args: argparse.Namespace) -> Json:
    objects = args.objects
    get = lambda i: ("GET", f"{AIPS}/aip-{i % objects:05d}", None, "")  # noqa: E731
    list_all = lambda i: ("GET", AIPS, None, "")  # noqa: E731
    list_sel = lambda i: ("GET", f"{AIPS}?labelSelector=shard%3D{i % 100}", None, "")  # noqa: E731
    patch = lambda i: ("PATCH", f"{AIPS}/aip-{i % objects:05d}/status", status(i, 3 + i), MERGE)  # noqa: E731
    missing = lambda i: ("GET", f"{AIPS}/missing-{i}", None, "")  # noqa: E731
    mixed_kinds = [get, list_sel, patch, missing]
    mixed = lambda i: mixed_kinds[i % 4](i)  # noqa: E731

    with server(args.history) as srv:
        conn = Conn(srv.namespace, srv.port)
        try:
            populate(conn, objects)
            timed(conn, 200, get)  # warm-up
            early = timed(conn, args.probe, get)
            rss_early = srv.rss_kib()
            results: Json = {
                "early_get_ms": {
                    "median": ms(statistics.median(early)),
                    "p99": ms(pct(early, 0.99)),
                },
            }
            rates: Json = {}
            for name, request, count in (
                ("get", get, args.requests // 5),
                ("list_all", list_all, max(20, args.requests // 500)),
                ("list_selector_1pct", list_sel, args.requests // 10),
                ("patch_status", patch, args.requests // 5),
            ):
                one = timed(conn, count, request)
                rates[name] = {
                    "sequential_per_s": round(len(one) / sum(one), 1),
                    "median_ms": ms(statistics.median(one)),
                    "p99_ms": ms(pct(one, 0.99)),
                    f"concurrent_{args.connections}_per_s": round(
                        throughput(
                            srv, args.connections, max(5, count // args.connections), request
                        ),
                        1,
                    ),
                }
            results["requests"] = rates
            lat = watch_latency(srv, objects, args.watch_samples)
            results["watch_latency_ms"] = {
                "samples": len(lat),
                "median": ms(statistics.median(lat)),
                "p99": ms(pct(lat, 0.99)),
                "max": ms(max(lat)),
            }
            served_before_late = timed(conn, args.requests, mixed)
            late = timed(conn, args.probe, get)
            rss_late = srv.rss_kib()
            results["late_get_ms"] = {
                "median": ms(statistics.median(late)),
                "p99": ms(pct(late, 0.99)),
            }
            results["cost_over_time"] = {
                "mixed_requests_between": len(served_before_late),
                "early_median_ms": results["early_get_ms"]["median"],
                "late_median_ms": results["late_get_ms"]["median"],
                "late_over_early": round(statistics.median(late) / statistics.median(early), 3),
                "rss_kib_early": rss_early,
                "rss_kib_late": rss_late,
            }
        finally:
            conn.close()
    return results


def render(results: Json, meta: Json) -> str:
    lines = [
        "# Embedded API server benchmark",
        "",
        f"{meta['date']} · kernel {meta['kernel']} · Python {meta['python']} · `{meta['command']}`",
        "",
        f"{meta['objects']} AliasIPs stored (project CRD, each with a 3-node status); server "
        "in its own process in a private network namespace; keep-alive HTTP from one client "
        "process.",
        "",
        "| request | sequential req/s | median ms | p99 ms | "
        f"{meta['connections']} connections req/s |",
        "|---|---|---|---|---|",
    ]
    for name, row in results["requests"].items():
        concurrent = next(v for k, v in row.items() if k.startswith("concurrent_"))
        cells = [name, row["sequential_per_s"], row["median_ms"], row["p99_ms"], concurrent]
        lines.append("| " + " | ".join(str(c) for c in cells) + " |")
    watch = results["watch_latency_ms"]
    cost = results["cost_over_time"]
    lines += [
        "",
        f"Watch latency (PATCH sent -> MODIFIED received), {watch['samples']} samples: "
        f"median {watch['median']} ms, p99 {watch['p99']} ms, max {watch['max']} ms.",
        "",
        f"Cost per request over time: median GET {cost['early_median_ms']} ms right after "
        f"start-up, {cost['late_median_ms']} ms after {cost['mixed_requests_between']} more "
        f"mixed requests (x{cost['late_over_early']}); server RSS {cost['rss_kib_early']} KiB "
        f"-> {cost['rss_kib_late']} KiB.",
        "",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--objects", type=int, default=1000)
    parser.add_argument(
        "--requests",
        type=int,
        default=10_000,
        help="mixed requests between the early and late probes",
    )
    parser.add_argument("--probe", type=int, default=500, help="GETs timed early and late")
    parser.add_argument("--connections", type=int, default=4)
    parser.add_argument("--watch-samples", type=int, default=500)
    parser.add_argument("--history", type=int, default=1000)
    parser.add_argument("--out-dir", type=Path, default=RESULTS_DIR)
    args = parser.parse_args(argv)
    if not (
        1 <= args.objects <= 20_000
        and 100 <= args.requests <= 200_000
        and 10 <= args.probe <= 10_000
    ):
        parser.error("--objects 1..20000, --requests 100..200000, --probe 10..10000")
    if not (1 <= args.connections <= 32 and 10 <= args.watch_samples <= 10_000):
        parser.error("--connections 1..32, --watch-samples 10..10000")
    if os.geteuid() != 0:
        print("bench.apiserver: run as root (network namespaces)", file=sys.stderr)
        return 1
    results = run(args)
    meta = {
        "date": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "kernel": platform.release(),
        "python": platform.python_version(),
        "command": " ".join([COMMAND, *(sys.argv[1:] if argv is None else argv)]),
        "objects": args.objects,
        "connections": args.connections,
        "cpus": os.cpu_count(),
    }
    args.out_dir.mkdir(parents=True, exist_ok=True)
    (args.out_dir / "apiserver.json").write_text(
        json.dumps({"meta": meta, "results": results}, indent=2) + "\n"
    )
    text = render(results, meta)
    (args.out_dir / "apiserver.md").write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())

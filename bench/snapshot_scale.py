"""How does the in-process data path cost grow with the number of links on a node?

A Kubernetes node carries one veth per pod; the agent must not pay for them on every
apply. This builds one lab node, adds N veth pairs (2N links, each with an IPv6
link-local address, like pod veths), and times, in the same run:

- a full link dump (what reading "every interface" would cost), and
- ``dataplane.apply_alias`` / ``release_alias`` (no probe), which read only the links
  that carry a global address.

    .venv/bin/python -m bench.snapshot_scale --pairs 0 50 150 --runs 10
"""

from __future__ import annotations

import argparse
import datetime
import json
import statistics
import subprocess
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from aliasip_lab.lan import Lan
from aliasip_lab.nsenter import netns
from aliasip_nodeagent import dataplane
from aliasip_nodeagent.announce import Announcer
from aliasip_nodeagent.netlink import NetlinkHost
from aliasip_nodeagent.placement import parse_request

ALIAS = "198.18.0.50"
RESULTS = Path(__file__).parent / "results"


def add_veth_pairs(lan: Lan, count: int) -> None:
    """``count`` veth pairs inside node1, all up (one ``ip -batch`` call)."""
    if count == 0:
        return
    lines = [
        f"link add pv{i} type veth peer name pp{i}\nlink set pv{i} up\nlink set pp{i} up"
        for i in range(count)
    ]
    subprocess.run(
        ["ip", "-n", lan.nodes[0].netns, "-batch", "-"],
        input="\n".join(lines),
        text=True,
        check=True,
        timeout=120,
    )


def median_ms(action: Callable[[], object], runs: int) -> float:
    samples = []
    for _ in range(runs):
        started = time.perf_counter()
        action()
        samples.append((time.perf_counter() - started) * 1000)
    return round(statistics.median(samples), 2)


def measure(pairs: int, runs: int) -> dict[str, Any]:
    lan = Lan.create(nodes=1)
    try:
        add_veth_pairs(lan, pairs)
        node = lan.nodes[0]
        with netns(node.netns):
            netlink = NetlinkHost()
            announcer = Announcer()
            announcer.socket_for(node.ifname, 4)
        request = parse_request(ALIAS)
        apply_ms: list[float] = []
        release_ms: list[float] = []
        for _ in range(runs):  # alternate, so each apply has something to add
            apply_ms.append(
                median_ms(
                    lambda: dataplane.apply_alias(request, netlink, announcer, probe_wait_s=None),
                    runs=1,
                )
            )
            release_ms.append(
                median_ms(lambda: dataplane.release_alias(request.ip, netlink), runs=1)
            )
        # The cost the agent avoids: dumping every link (the netlink module's own socket).
        full_dump = median_ms(lambda: list(netlink._ipr.get_links()), runs)
        netlink.close()
        announcer.close()
        return {
            "links": 2 * pairs + 2,
            "full_link_dump_ms": full_dump,
            "apply_ms": round(statistics.median(apply_ms), 2),
            "release_ms": round(statistics.median(release_ms), 2),
        }
    finally:
        lan.destroy()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--pairs", type=int, nargs="+", default=[0, 50, 150])
    parser.add_argument("--runs", type=int, default=10)
    args = parser.parse_args(argv)
    if not 1 <= args.runs <= 1000 or not all(0 <= p <= 1000 for p in args.pairs):
        parser.error("--runs in [1, 1000], --pairs each in [0, 1000]")
    rows = [measure(p, args.runs) for p in args.pairs]
    lines = [
        "# In-process apply/release cost vs links on the node",
        "",
        f"- date: {datetime.datetime.now(datetime.UTC).isoformat(timespec='seconds')}",
        f"- command: `.venv/bin/python -m bench.snapshot_scale --pairs "
        f"{' '.join(map(str, args.pairs))} --runs {args.runs}`",
        "",
        "| links in the namespace | full link dump ms | apply_alias ms | release_alias ms |",
        "|---|---|---|---|",
        *(
            f"| {r['links']} | {r['full_link_dump_ms']} | {r['apply_ms']} | {r['release_ms']} |"
            for r in rows
        ),
    ]
    text = "\n".join(lines) + "\n"
    print(text)
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "snapshot_scale.md").write_text(text)
    (RESULTS / "snapshot_scale.json").write_text(json.dumps(rows, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

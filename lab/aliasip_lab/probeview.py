"""``aliasip-lab probe ADDRESS`` in a lab: the client's view and the wire's, side by side.

Two witnesses for the same seconds:

- the client prober (``aliasip_lab.prober``, in the client namespace): ICMP echo through
  the client's own kernel, so its neighbour cache picks the MAC, as for any real client.
  It gives the outage a client lives through; it hears one MAC at a time;
- the wire observer (``aliasip_lab.observer``, in the observer namespace): a broadcast ARP
  request / neighbour solicitation every round, every MAC that answers. It gives the
  split-brain rounds (two kernels answering at once) and the holderless time.
"""

from __future__ import annotations

import argparse
import json
import signal
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from aliasip_lab.cluster import Lab
from aliasip_lab.observer import Running, summary


def parser() -> argparse.ArgumentParser:
    made = argparse.ArgumentParser(prog="aliasip-lab probe", description=__doc__)
    made.add_argument("address")
    made.add_argument("--interval-ms", type=float, default=10.0)
    made.add_argument("--duration", type=float, default=3.0, help="seconds (at most 600)")
    made.add_argument("--json", action="store_true", help='{"client": ..., "observer": ...}')
    return made


def main(lab: Lab, argv: Sequence[str]) -> int:
    args = parser().parse_args(argv)
    if not 0 < args.duration <= 600 or not 1 <= args.interval_ms <= 10_000:
        parser().error("--duration must be in (0, 600] s and --interval-ms in [1, 10000]")
    address = args.address.split("/")[0]
    lan = lab.lan
    client_argv = [
        "ip", "netns", "exec", lan.client.netns, sys.executable, "-m", "aliasip_lab.prober",
        address, "--interval-ms", str(args.interval_ms), "--duration", str(args.duration),
        "--json",
    ]  # fmt: skip
    with tempfile.TemporaryDirectory(prefix="aip-probe-") as workdir:
        # Ctrl-C reaches both children from the terminal: each stops and still reports.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        client = subprocess.Popen(client_argv, stdout=subprocess.PIPE, text=True)
        observer = Running(
            lan.observer.netns, [address], args.duration + 0.2,
            Path(workdir) / "events.jsonl", interval_ms=args.interval_ms,
        )  # fmt: skip

        def stop(_signum: int, _frame: object) -> None:
            for proc in (client, observer.proc):
                if proc.poll() is None:
                    proc.send_signal(signal.SIGTERM)

        signal.signal(signal.SIGTERM, stop)
        out, _ = client.communicate(timeout=args.duration + 60)
        wire = observer.report(timeout_s=args.duration + 60)
    view = json.loads(out)
    if args.json:
        print(json.dumps({"client": view, "observer": wire}))
    else:
        print("\n".join(side_by_side(view, wire)))
    return 0


def side_by_side(view: dict[str, Any], wire: dict[str, Any]) -> list[str]:
    lines = [
        f"client prober (ICMP echo from the client; its neighbour cache picks the MAC): "
        f"{view['answered']}/{view['sent']} answered; outage {view['outage_ms']} ms; "
        f"split-brain samples {len(view['split_brain_samples'])}",
    ]
    for seg in view["segments"]:
        lines.append(
            f"  {seg['mac']}: {seg['replies']} replies, {seg['first_ms']}-{seg['last_ms']} ms"
        )
    return [*lines, *summary(wire)]

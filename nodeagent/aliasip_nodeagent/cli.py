"""``aliasip-agent``: one-shot commands that work without any cluster (like IPaddr2 by hand).

    aliasip-agent apply ADDRESS[/PREFIX] [--interface IF] [--announce-count N]
                        [--announce-interval-ms MS] [--probe-wait-ms MS] [--no-probe] [--json]
    aliasip-agent release ADDRESS[/PREFIX] | --all [--json]
    aliasip-agent list [--json]
    aliasip-agent run --node NAME [--kubeconfig PATH] [--lease-namespace NS]
                      [--lease-duration S] [--renew-interval S] [--resync-interval S]
                      [--announce-refresh S] [--address-lifetime S] [--handover S]
                      [--heartbeat-keys DIR] [--heartbeat-port PORT]
                      [--heartbeat-interval-ms MS] [--heartbeat-misses N]
                      [--mute-window-ms MS] [--health-port PORT] [--health-address ADDR]

``run`` is the daemon (a DaemonSet's container): it follows the AliasIPs' status through
the Kubernetes API and runs until SIGTERM, which leaves the aliases in place.

Exit codes: 0 done (also when nothing needed changing), 1 kernel/system failure,
2 invalid input, 3 this host cannot carry the alias as configured, 4 the address is
answered by another host on the wire. On failure one line on stderr names the problem
(with ``--json``: one JSON object on stdout as well). A failure never leaves a change.

pyroute2 and scapy are imported only by the subcommands that need them, because the
import cost is most of this command's run time (see bench/).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence

from aliasip_nodeagent import errors
from aliasip_nodeagent.dataplane import DEFAULT_PROBE_WAIT_S, AnnounceSchedule
from aliasip_nodeagent.heartbeat import DEFAULT_INTERVAL_S, DEFAULT_MISSES, DEFAULT_PORT
from aliasip_nodeagent.placement import parse_request

PROG = "aliasip-agent"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=PROG, description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)

    apply = sub.add_parser("apply", help="add an alias here and announce it")
    apply.add_argument(
        "address", help="ADDRESS or ADDRESS/PREFIX (prefix of the stationary subnet)"
    )
    apply.add_argument(
        "--interface", help="interface to use (must carry a covering stationary address)"
    )
    apply.add_argument("--announce-count", type=int, default=AnnounceSchedule.count)
    apply.add_argument(
        "--announce-interval-ms", type=float, default=AnnounceSchedule.interval_s * 1000
    )
    apply.add_argument("--probe-wait-ms", type=float, default=DEFAULT_PROBE_WAIT_S * 1000)
    apply.add_argument("--no-probe", action="store_true", help="skip the duplicate-address probe")
    apply.add_argument("--json", action="store_true")

    release = sub.add_parser("release", help="delete an alias that aliasip added here")
    target = release.add_mutually_exclusive_group(required=True)
    target.add_argument("address", nargs="?", help="ADDRESS or ADDRESS/PREFIX")
    target.add_argument("--all", action="store_true", help="every alias aliasip added here")
    release.add_argument("--json", action="store_true")

    listing = sub.add_parser("list", help="the aliases aliasip holds here")
    listing.add_argument("--json", action="store_true")

    run = sub.add_parser("run", help="the node agent daemon (watch AliasIPs, renew a Lease)")
    run.add_argument("--node", default=os.environ.get("NODE_NAME"), help="this node's name")
    run.add_argument("--kubeconfig", help="kubeconfig file (default: in-cluster credentials)")
    run.add_argument(
        "--lease-namespace", default=os.environ.get("POD_NAMESPACE") or "aliasip-system"
    )
    run.add_argument("--lease-duration", type=int, default=3, help="seconds")
    run.add_argument("--renew-interval", type=float, default=1.0, help="seconds, at least 1")
    run.add_argument("--resync-interval", type=float, default=5.0, help="seconds")
    run.add_argument(
        "--announce-refresh",
        type=float,
        default=30.0,
        help="seconds between gratuitous ARPs for an alias held unchanged (at least 1)",
    )
    run.add_argument("--probe-wait-ms", type=float, default=DEFAULT_PROBE_WAIT_S * 1000)
    run.add_argument(
        "--address-lifetime",
        type=int,
        default=1,
        help="seconds an alias outlives a dead or frozen agent in the kernel (the dead-man "
        "switch; standbys wait this plus 1 s of silence before a failover)",
    )
    run.add_argument(
        "--handover",
        type=int,
        default=15,
        help="seconds the aliases outlive a graceful stop (SIGTERM), for the next agent",
    )
    run.add_argument(
        "--heartbeat-keys",
        default=os.environ.get("ALIASIP_HEARTBEAT_KEYS"),
        help="directory of the monitoring path's keys (the mounted Secret aliasip-heartbeat: "
        "one file per key id, optional 'signing'); without it heartbeats are off",
    )
    run.add_argument(
        "--heartbeat-port", type=int, default=DEFAULT_PORT, help="UDP port of the heartbeats"
    )
    run.add_argument(
        "--heartbeat-interval-ms",
        type=float,
        default=DEFAULT_INTERVAL_S * 1000,
        help="a heartbeat to each peer this often",
    )
    run.add_argument(
        "--heartbeat-misses",
        type=int,
        default=DEFAULT_MISSES,
        help="heartbeats missed before a peer's aliases are probed on the wire",
    )
    run.add_argument(
        "--mute-window-ms",
        type=int,
        default=None,
        help="ms a dead or frozen agent's aliases may keep answering (nftables, the fine "
        "dead-man switch; default: heartbeat interval x (misses - 1), at least 50; 0: off, "
        "the address lifetime alone)",
    )
    run.add_argument(
        "--health-port",
        type=int,
        default=0,
        help="TCP port of /livez and /readyz, served on the agent's event loop (0: off; the "
        "DaemonSet uses 7948)",
    )
    run.add_argument(
        "--health-address",
        default="127.0.0.1",
        help="address the health endpoint listens on (default: loopback; the agent runs in "
        "the host's network, and kubelet probes 127.0.0.1)",
    )
    run.add_argument("--api-timeout", type=float, default=2.0, help="seconds per API call")
    run.add_argument("--log-level", default="INFO")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command == "run":
        from aliasip_nodeagent.service import run_daemon

        return run_daemon(args)
    try:
        output = _run(args)
    except errors.AliasError as exc:
        return _fail(args, exc.code, exc.message, exc.exit_code)
    except PermissionError as exc:
        return _fail(args, "PermissionDenied", f"{exc} (needs NET_ADMIN and NET_RAW)", 1)
    except KeyboardInterrupt:
        # Most of apply's time is the repeated announcements, after the alias was added.
        return _fail(
            args, "Interrupted", "interrupted; `aliasip-agent list` shows what is held", 130
        )
    print(json.dumps({"ok": True, **output}) if args.json else _human(output))
    return 0


def _run(args: argparse.Namespace) -> dict[str, object]:
    from aliasip_nodeagent import dataplane
    from aliasip_nodeagent.netlink import NetlinkHost

    if args.command == "apply":
        request = parse_request(args.address, args.interface)
        schedule = AnnounceSchedule(args.announce_count, args.announce_interval_ms / 1000)
        if not args.no_probe and not 1 <= args.probe_wait_ms <= 5000:
            raise errors.InvalidInput("--probe-wait-ms must be between 1 and 5000")
        from aliasip_nodeagent.announce import Announcer

        announcer = Announcer()
        try:
            with NetlinkHost() as netlink:
                result = dataplane.apply_alias(
                    request,
                    netlink,
                    announcer,
                    probe_wait_s=None if args.no_probe else args.probe_wait_ms / 1000,
                )
            dataplane.announce_repeats(result, announcer, schedule)
        finally:
            announcer.close()
        return result.to_dict()
    if args.command == "release":
        target = None if args.all else parse_request(args.address).ip
        with NetlinkHost() as netlink:
            if target is None:
                return dataplane.release_all(netlink).to_dict()
            return dataplane.release_alias(target, netlink).to_dict()
    with NetlinkHost() as netlink:
        held = dataplane.list_aliases(netlink)
        return {"action": "list", "aliases": [h.to_dict() for h in held]}


def _human(output: dict[str, object]) -> str:
    action = output["action"]
    if action == "apply":
        what = "added" if output["changed"] else "already held"
        probe = output["probe_ms"]
        probed = "not probed" if probe is None else f"probe {probe} ms: nobody answered"
        return (
            f"{output['address']}/{output['prefix']} {what} on {output['interface']} "
            f"({probed}; {output['announcements']} announcement rounds)"
        )
    if action == "release":
        released = output["released"]
        assert isinstance(released, list)
        if not released:
            return f"{output['address']}: not held here, nothing to do"
        return "\n".join(
            f"{r['address']}/{r['prefix']} released from {r['interface']}" for r in released
        )
    aliases = output["aliases"]
    assert isinstance(aliases, list)
    if not aliases:
        return "no aliases held here"
    return "\n".join(f"{a['address']}/{a['prefix']}\t{a['interface']}" for a in aliases)


def _fail(args: argparse.Namespace, code: str, message: str, exit_code: int) -> int:
    print(f"{PROG}: {code}: {message}", file=sys.stderr)
    if args.json:
        print(json.dumps({"ok": False, "error": code, "message": message}))
    return exit_code


if __name__ == "__main__":
    sys.exit(main())

"""``aliasip-operator``: elect a leader, then run kopf (standalone) on the leader only.

Lifecycle, and why it is this simple:

1. Serve ``/livez`` and ``/readyz`` at once (``probes``): the standby is live and ready
   too (it is fit to lead), so the Deployment's probes never restart a replica for merely
   waiting; once kopf runs, they are answered on kopf's own event loop.
2. With ``--leader-elect``, block until this process holds the Lease
   ``--leader-election-namespace``/``--leader-election-lease`` (identity: ``POD_NAME``).
3. Wait for the AliasIP CRD (kopf's CRD scanning is off, see ``handlers.configure``).
4. Run kopf in the main thread until SIGTERM/SIGINT; then give the Lease up so the
   standby takes over at once, and exit 0.

Losing the Lease (a renewal did not succeed within the renew deadline) ends the process
at once with exit code 3, from the renewal thread, without a graceful kopf shutdown: a
graceful stop would let in-flight handlers keep writing while another replica may
already lead, and kopf holds no state worth saving (no peering, every decision is
recomputed from the cluster). The Deployment restarts the container, which then stands
by. This is client-go's choice too (``OnStoppedLeading`` usually calls ``klog.Fatal``).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import socket
import sys
import threading
import time
from collections.abc import Sequence
from types import FrameType
from typing import Any

import kopf

from aliasip_operator import handlers
from aliasip_operator.kube import (
    EVENTS_NAMESPACE,
    EVENTS_NAMESPACES,
    ApiError,
    ApiUnavailable,
    KubeApi,
    load_configuration,
)
from aliasip_operator.leader import LeaderElector
from aliasip_operator.probes import HealthServer, Probes

EXIT_LOST_LEADERSHIP = 3
CRD_NAME = "aliasips.aliasip.io"
_STANDARD = set(vars(logging.LogRecord("", 0, "", 0, "", (), None)))

log = logging.getLogger("aliasip_operator")


class JsonFormatter(logging.Formatter):
    """One JSON object per line with stable keys (``extra=`` fields become keys)."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            # milliseconds: a failover's steps (claims, Lease reads, writes) are ms apart
            "time": f"{self.formatTime(record, '%Y-%m-%dT%H:%M:%S')}.{int(record.msecs):03d}",
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        for key, value in vars(record).items():
            # Our ``extra=`` keys are plain values; kopf's (settings, k8s refs) are objects.
            plain = isinstance(value, str | int | float | bool) or value is None
            if key not in _STANDARD and key not in line and plain:
                line[key] = value
        if record.exc_info:
            line["error"] = self.formatException(record.exc_info)
        return json.dumps(line, default=str)


def configure_logging(level: str) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    logging.getLogger("kopf").setLevel(max(root.level, logging.INFO))
    # kopf logs every handler and timer success per object (every 0.5 s per AliasIP):
    # our handlers log what they change, so keep kopf's per-object logs to problems.
    logging.getLogger("kopf.objects").setLevel(max(root.level, logging.WARNING))


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="aliasip-operator", description=__doc__.split("\n")[0])
    parser.add_argument("--kubeconfig", help="kubeconfig file (default: in-cluster)")
    parser.add_argument("--leader-elect", action="store_true", help="elect a leader by Lease")
    parser.add_argument(
        "--leader-election-namespace",
        default=os.environ.get("POD_NAMESPACE", "aliasip-system"),
        help="namespace of the election Lease (default: $POD_NAMESPACE)",
    )
    parser.add_argument(
        "--events-namespace",
        default=EVENTS_NAMESPACE,
        choices=EVENTS_NAMESPACES,
        help=(
            "namespace of the Events about AliasIPs (default: %(default)s): kube-apiserver "
            "admits Events about cluster-scoped objects only in these, and `kubectl describe "
            "aip` finds them there"
        ),
    )
    parser.add_argument("--leader-election-lease", default="aliasip-operator")
    parser.add_argument(
        "--identity",
        default=os.environ.get("POD_NAME") or f"{socket.gethostname()}-{os.getpid()}",
        help="leader-election identity (default: $POD_NAME)",
    )
    parser.add_argument(
        "--agent-lease-namespace",
        default="aliasip-system",
        help="namespace of the agents' Leases aliasip-agent-<node>",
    )
    parser.add_argument(
        "--health-port",
        type=int,
        default=8080,
        help="TCP port of /livez, /readyz and /healthz (= /livez); 0: any free port",
    )
    parser.add_argument("--log-level", default="info")
    return parser.parse_args(argv)


def wait_for_crd(api: KubeApi, stop: threading.Event) -> bool:
    """Until the AliasIP CRD exists (True), or ``stop`` (False)."""
    announced = False
    while not stop.is_set():
        try:
            if api.crd_exists(CRD_NAME):
                return True
        except (ApiError, ApiUnavailable) as exc:
            log.warning("cannot list CRDs", extra={"error": str(exc)})
        if not announced:
            log.info("waiting for the CRD", extra={"crd": CRD_NAME})
            announced = True
        stop.wait(1.0)
    return False


def _lost() -> None:
    logging.getLogger("aliasip_operator").critical("leadership lost: exiting")
    logging.shutdown()
    os._exit(EXIT_LOST_LEADERSHIP)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    configure_logging(args.log_level)
    api = KubeApi(load_configuration(args.kubeconfig))
    elector: LeaderElector | None = None
    if args.leader_elect:
        elector = LeaderElector(
            api, args.leader_election_namespace, args.leader_election_lease, args.identity
        )
    # With the election Lease in the namespace kopf watches, its renewals are the Lease
    # watch's heartbeat (probes).
    same = args.leader_election_namespace == args.agent_lease_namespace
    probes = Probes(elector, lease_events_expected=same)
    health = HealthServer(probes, args.health_port)
    log.info(
        "starting", extra={"identity": args.identity, "healthPort": health.port, "pid": os.getpid()}
    )
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        log.info("stopping", extra={"signal": signal.Signals(signum).name})
        stop.set()
        if elector is not None:
            elector.stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    if elector is not None:
        if not elector.acquire():
            return 0
        elector.keep(on_lost=_lost)
    probes.starting()
    try:
        if not wait_for_crd(api, stop):
            return 0
        log.info("leading", extra={"identity": args.identity, "since": time.time()})
        ctx = handlers.Context(
            api,
            args.events_namespace,
            args.identity,
            agent_lease_namespace=args.agent_lease_namespace,
            may_write=(lambda: elector.leading) if elector is not None else handlers.always,
        )
        kopf.run(
            standalone=True,
            namespaces=[args.agent_lease_namespace],
            memo=kopf.Memo(context=ctx, probes=probes),
        )
    finally:
        probes.stopping()
        if elector is not None:
            elector.release()
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Wiring for ``aliasip-agent run``: settings, the real netlink/packet/API owners, signals.

Kept apart from ``daemon`` (the behaviour) so that the daemon takes everything it touches
as arguments, and from ``cli`` so that the one-shot commands never import the API client.
SIGTERM and SIGINT end the loop and exit 0 *without* releasing anything: the aliases are
handed over to the next agent for ``--handover`` seconds (see ``daemon`` and ``deadman``).
With ``--health-port``, ``/livez`` and ``/readyz`` are served on the agent's loop
(``health``) from a socket bound first: a port that is taken ends the agent at once
(exit 1), before it touches the kernel, rather than leave its probes failing.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import logging
import signal
import socket
import sys

from aliasip_nodeagent.daemon import Agent, Settings, run_agent
from aliasip_nodeagent.health import KERNEL_STALE_S, AgentFacts, HealthServer, listen
from aliasip_nodeagent.logfmt import kv
from aliasip_nodeagent.mute import KernelMute
from aliasip_nodeagent.nft import NftError
from aliasip_nodeagent.timedexecutor import TimedExecutor

PROG = "aliasip-agent run"
log = logging.getLogger("aliasip.agent")


def run_daemon(args: argparse.Namespace) -> int:
    logging.basicConfig(
        stream=sys.stderr,
        level=getattr(logging, str(args.log_level).upper(), logging.INFO),
        format="time=%(asctime)s level=%(levelname)s %(message)s",
    )
    if not args.node:
        print(f"{PROG}: --node (or NODE_NAME) is required", file=sys.stderr)
        return 2
    try:
        settings = Settings(
            node=args.node,
            lease_namespace=args.lease_namespace,
            lease_duration_s=args.lease_duration,
            renew_interval_s=args.renew_interval,
            resync_interval_s=args.resync_interval,
            announce_refresh_s=args.announce_refresh,
            probe_wait_s=args.probe_wait_ms / 1000,
            address_lifetime_s=args.address_lifetime,
            handover_s=args.handover,
            heartbeat_keys=args.heartbeat_keys,
            heartbeat_port=args.heartbeat_port,
            heartbeat_interval_s=args.heartbeat_interval_ms / 1000,
            heartbeat_misses=args.heartbeat_misses,
            mute_window_ms=args.mute_window_ms,
        )
    except ValueError as exc:
        print(f"{PROG}: {exc}", file=sys.stderr)
        return 2
    if not 0 <= args.health_port <= 65535:
        print(f"{PROG}: --health-port is a TCP port, 1-65535 (0: off)", file=sys.stderr)
        return 2
    health = None
    if args.health_port:
        try:
            health = listen(args.health_address, args.health_port)
        except OSError as exc:
            where = f"{args.health_address}:{args.health_port}"
            print(f"{PROG}: cannot serve the health endpoint on {where}: {exc}", file=sys.stderr)
            return 1
    from aliasip_nodeagent.announce import Announcer
    from aliasip_nodeagent.kube import KubeApi, load_configuration
    from aliasip_nodeagent.netlink import NetlinkHost

    try:
        configuration = load_configuration(args.kubeconfig)
    except Exception as exc:  # KubeconfigError, naming the file and the field
        print(f"{PROG}: cannot load API credentials: {exc}", file=sys.stderr)
        return 1
    # One thread owns the data path (netlink and packet sockets), created there; timed, so
    # that /livez tells a call that never returns.
    dataplane = TimedExecutor(max_workers=1, thread_name_prefix="dataplane")
    mute = dataplane.submit(_open_mute, settings).result()
    netlink = dataplane.submit(NetlinkHost, settings.address_lifetime_s, mute).result()
    announcer = Announcer()
    # Everything imported so far (scapy and pyroute2: ~130,000 objects) lives as long as
    # the process: out of the collector's sight, a full collection takes ~2 ms instead
    # of ~75 ms, far inside the dead-man switch's 200 ms window (a collection holds the
    # GIL, and with it the thread that keeps the aliases live).
    gc.collect()
    gc.freeze()
    try:
        kube = KubeApi(configuration, args.api_timeout)
        agent = Agent(settings, kube, netlink, announcer, dataplane, mute=mute)
        asyncio.run(_main(agent, health, dataplane))
    finally:
        dataplane.submit(netlink.close).result()
        if mute is not None:
            dataplane.submit(mute.close).result()
        dataplane.shutdown()
        announcer.close()
        if health is not None:
            health.close()
    return 0


def _open_mute(settings: Settings) -> KernelMute | None:
    """The fine dead-man switch, its tables installed; None (logged) where this host has
    no libnftables or no nf_tables: the address lifetime alone then (a 2 s window, which
    the Lease tells standbys by not advertising one)."""
    if settings.mute_ms == 0:
        return None
    try:
        mute = KernelMute(settings.mute_ms)
        mute.install()
    except NftError as exc:
        log.warning(
            kv(
                "mute-unavailable",
                node=settings.node,
                error=exc,
                note="the dead-man switch falls back to address lifetimes (2 s window)",
            )
        )
        return None
    log.info(kv("mute-installed", node=settings.node, window_ms=settings.mute_ms))
    return mute


def health_facts(agent: Agent, dataplane: TimedExecutor) -> AgentFacts:
    """What ``health`` reads from a running agent: narrow callables, nothing else."""
    deadman = agent.deadman
    return AgentFacts(
        synced=lambda: agent.synced,
        lease_renewed_at=lambda: agent.liveness.renewed_at,
        fenced=lambda: agent.liveness.fenced,
        kernel_renewed_at=lambda: deadman.renewed_at,
        dataplane_busy_since=lambda: dataplane.busy_since,
        lease_fresh_s=agent.settings.lease_duration_s - agent.settings.fence_margin_s,
        kernel_stale_s=max(KERNEL_STALE_S, 3 * deadman.interval_s),
    )


async def _main(agent: Agent, health: socket.socket | None, dataplane: TimedExecutor) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    server = None
    if health is not None:
        server = HealthServer(health_facts(agent, dataplane), agent.settings.node)
        await server.start(health)
        host, port = health.getsockname()[:2]
        log.info(kv("health-serving", node=agent.settings.node, listen=f"{host}:{port}"))
    try:
        await run_agent(agent, stop)
    finally:
        if server is not None:
            server.close()

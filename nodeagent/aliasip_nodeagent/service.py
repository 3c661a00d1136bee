"""Wiring for ``aliasip-agent run``: settings, the real netlink/packet/API owners, signals.

Kept apart from ``daemon`` (the behaviour) so that the daemon takes everything it touches
as arguments, and from ``cli`` so that the one-shot commands never import the API client.
SIGTERM and SIGINT end the loop and exit 0 *without* releasing anything: the aliases are
handed over to the next agent for ``--handover`` seconds (see ``daemon`` and ``deadman``).
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import logging
import signal
import sys
from concurrent.futures import ThreadPoolExecutor

from aliasip_nodeagent.daemon import Agent, Settings, run_agent
from aliasip_nodeagent.logfmt import kv
from aliasip_nodeagent.mute import KernelMute
from aliasip_nodeagent.nft import NftError

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
    from aliasip_nodeagent.announce import Announcer
    from aliasip_nodeagent.kube import KubeApi, load_configuration
    from aliasip_nodeagent.netlink import NetlinkHost

    try:
        configuration = load_configuration(args.kubeconfig)
    except Exception as exc:  # KubeconfigError, naming the file and the field
        print(f"{PROG}: cannot load API credentials: {exc}", file=sys.stderr)
        return 1
    # One thread owns the data path (netlink and packet sockets), created there.
    dataplane = ThreadPoolExecutor(max_workers=1, thread_name_prefix="dataplane")
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
        asyncio.run(_main(agent))
    finally:
        dataplane.submit(netlink.close).result()
        if mute is not None:
            dataplane.submit(mute.close).result()
        dataplane.shutdown()
        announcer.close()
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


async def _main(agent: Agent) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    await run_agent(agent, stop)

"""The agent's informer loop: list, then watch, in a thread of its own (the client blocks).

Every handler runs on the event loop (``call_soon_threadsafe``), except ``first``, which
runs in the watch thread to filter what the loop needs to hear of. Used for the AliasIPs
and for the agents' Leases (``leasestore``).
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Callable, Iterator
from typing import Any

from aliasip_nodeagent.kube import ApiError, ApiUnavailable, Listing
from aliasip_nodeagent.logfmt import kv

log = logging.getLogger("aliasip.agent")
EventHandler = Callable[[str | None, dict[str, Any]], None]


def watch_loop(
    node: str,
    loop: asyncio.AbstractEventLoop | None,
    stopping: threading.Event,
    timeout_s: int,
    what: str,
    list_all: Callable[[], Listing],
    watch: Callable[[str, int], Iterator[dict[str, Any]]],
    on_list: Callable[[tuple[dict[str, Any], ...]], None],
    on_event: EventHandler,
    broken: Callable[[], None] | None = None,
    first: Callable[[str | None, dict[str, Any]], bool] | None = None,
) -> None:
    """List, then watch; resume after a break, relist after 410 Gone. Bounded waits.

    ``on_list`` and ``on_event`` run on the loop; ``first``, if given, runs here in
    the watch thread for every event and says whether the loop needs to hear of it
    (waking the loop for every other agent's Lease renewal cost more than the rest
    of an idle agent's work).
    """
    assert loop is not None
    rv: str | None = None
    backoff = 0.2
    while not stopping.is_set():
        try:
            if rv is None:
                listing = list_all()
                loop.call_soon_threadsafe(on_list, listing.items)
                rv = listing.resource_version
            for event in watch(rv, timeout_s):
                if stopping.is_set():
                    return
                obj = event.get("object") or {}
                rv = str((obj.get("metadata") or {}).get("resourceVersion", rv))
                kind = event.get("type")
                if kind != "BOOKMARK" and (first is None or first(kind, obj)):
                    loop.call_soon_threadsafe(on_event, kind, obj)
            backoff = 0.2
        except ApiError as exc:
            if exc.status == 410:
                log.info(kv("watch-expired", node=node, watch=what, note="relisting"))
            else:
                log.warning(kv("watch-failed", node=node, watch=what, error=exc))
            rv = None
            if broken is not None:
                loop.call_soon_threadsafe(broken)
            stopping.wait(backoff)
        except (ApiUnavailable, ValueError) as exc:
            log.warning(kv("watch-broken", node=node, watch=what, error=exc))
            if broken is not None:
                loop.call_soon_threadsafe(broken)
            stopping.wait(backoff)
            backoff = min(backoff * 2, 2.0)
        except RuntimeError:  # the loop is closed: the agent is stopping
            return

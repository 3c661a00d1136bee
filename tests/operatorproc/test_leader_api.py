"""Leader election against the embedded API server: create races, renewals, takeover,
release, and stepping down when someone else holds the Lease."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import pytest

from aliasip_lab.nsenter import netns
from aliasip_operator.kube import KubeApi, load_configuration
from aliasip_operator.leader import LeaderElector, Timings
from tests.api.support import ApiLab, eventually

NS = "aliasip-system"
LEASE = f"/apis/coordination.k8s.io/v1/namespaces/{NS}/leases/aliasip-operator"
FAST = Timings(lease_duration_s=1, renew_deadline_s=0.6, retry_period_s=0.2, call_timeout_s=0.3)


@pytest.fixture
def api(lab: ApiLab) -> Iterator[KubeApi]:
    # The test thread (and the threads it starts) connect from inside the lab's namespace.
    reply = lab.client.post("/api/v1/namespaces", {"metadata": {"name": NS}})
    assert reply.status == 201, reply.body
    with netns(lab.namespace):
        yield KubeApi(load_configuration(str(lab.kubeconfig)))


def elector(api: KubeApi, identity: str) -> LeaderElector:
    return LeaderElector(api, NS, "aliasip-operator", identity, FAST)


def holder(lab: ApiLab) -> str | None:
    reply = lab.client.get(LEASE)
    return reply.json["spec"].get("holderIdentity") if reply.status == 200 else None


def test_the_first_creates_the_second_waits_then_takes_over_an_abandoned_lease(
    lab: ApiLab, api: KubeApi
) -> None:
    a, b = elector(api, "op-a"), elector(api, "op-b")
    assert a.try_once() and a.leading
    assert holder(lab) == "op-a"
    assert not b.try_once()
    # While a renews, b never gets it, however often it tries within a few durations.
    deadline = time.monotonic() + 2.5
    while time.monotonic() < deadline:
        assert a.try_once()
        assert not b.try_once()
        time.sleep(0.1)
    # a stops renewing (as if its node died): b takes over after one lease duration.
    started = time.monotonic()
    eventually(b.try_once, timeout=3, interval=0.1)
    assert 0.9 <= time.monotonic() - started < 2.5
    lease = lab.client.get(LEASE).json["spec"]
    assert (lease["holderIdentity"], lease["leaseTransitions"]) == ("op-b", 1)
    # a comes back: its stale copy is refused (409) and it sees b's fresh record.
    assert not a.try_once()
    assert not a.try_once()
    assert holder(lab) == "op-b"


def test_two_candidates_racing_to_create_get_one_leader(lab: ApiLab, api: KubeApi) -> None:
    candidates = [elector(api, f"op-{i}") for i in range(4)]
    barrier = threading.Barrier(len(candidates))
    won: list[str] = []

    def race(e: LeaderElector) -> None:
        barrier.wait(5)
        if e.try_once():
            won.append(e.identity)

    threads = [threading.Thread(target=race, args=(e,)) for e in candidates]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert len(won) == 1
    assert holder(lab) == won[0]


def test_release_hands_over_at_once(lab: ApiLab, api: KubeApi) -> None:
    a, b = elector(api, "op-a"), elector(api, "op-b")
    assert eventually(a.try_once, timeout=3)
    a.keep(on_lost=lambda: None)
    assert not b.try_once()
    a.release()
    assert holder(lab) is None
    assert b.try_once()  # a released Lease is free: no waiting for a duration


def test_the_leader_steps_down_when_the_lease_is_taken_from_it(lab: ApiLab, api: KubeApi) -> None:
    a = elector(api, "op-a")
    lost = threading.Event()
    assert eventually(a.try_once, timeout=3)
    a.keep(on_lost=lost.set)
    try:
        # Someone else writes the Lease (e.g. after a partition healed): a's renewal is a
        # 409, it reads the other holder's fresh record, and it must stop acting.
        def stomp() -> bool:
            body = lab.client.get(LEASE).json
            body["spec"]["holderIdentity"] = "op-z"
            return lab.client.put(LEASE, body).status == 200  # 409 if a renewed meanwhile

        eventually(stomp, timeout=3)
        assert lost.wait(FAST.renew_deadline_s + FAST.retry_period_s + 1)
        assert not a.leading
        assert holder(lab) == "op-z"
    finally:
        a.stop.set()

"""The refusal memory's rules (nodeagent/aliasip_nodeagent/refusals.py), pure."""

from __future__ import annotations

import ipaddress

import pytest

from aliasip_nodeagent import errors
from aliasip_nodeagent.backoff import CAP_S
from aliasip_nodeagent.hoststate import HostState
from aliasip_nodeagent.placement import AliasRequest
from aliasip_nodeagent.refusals import Refusals, describe, precheck
from tests.unit.hosts import iface, stationary


def test_tries_back_off_doubling_up_to_the_cap() -> None:
    r = Refusals()
    now, delays = 0.0, []
    for _ in range(8):
        assert r.standing("k", 3, 1, now) is None  # a try is due
        _, wait = r.failed("k", 3, 1, "AddressInUse: x", True, now)
        standing = r.standing("k", 3, 1, now)
        assert standing is not None and standing.heard is True
        delays.append(wait)
        now += wait
    assert delays == [1.0, 2.0, 4.0, 8.0, 16.0, CAP_S, CAP_S, CAP_S]


@pytest.mark.parametrize(("epoch", "generation"), [(4, 1), (3, 2)], ids=["epoch", "generation"])
def test_a_new_epoch_or_spec_tries_at_once(epoch: int, generation: int) -> None:
    r = Refusals()
    r.failed("k", 3, 1, "NoCoveringInterface: x", None, 0.0)
    assert r.standing("k", 3, 1, 0.5) is not None
    assert r.standing("k", epoch, generation, 0.5) is None


def test_a_cause_is_news_once() -> None:
    r = Refusals()
    assert r.failed("k", 1, 1, "AddressInUse: a", True, 0.0)[0]
    assert not r.failed("k", 1, 1, "AddressInUse: a", True, 1.0)[0]
    assert r.failed("k", 1, 1, "InterfaceDown: b", None, 3.0)[0]


def test_success_forget_and_keep_only_end_a_back_off() -> None:
    r = Refusals()
    for key in ("a", "b", "c"):
        r.failed(key, 1, 1, "X: y", None, 0.0)
    r.succeeded("a")
    r.keep_only(["b"])
    assert [r.standing(k, 1, 1, 0.1) is not None for k in "abc"] == [False, True, False]
    r.forget()
    assert r.standing("b", 1, 1, 0.1) is None


def test_precheck_names_the_data_paths_refusal() -> None:
    host = HostState(interfaces=(iface("eth1", stationary("198.18.0.11/24")),))
    ok = AliasRequest(ip=ipaddress.ip_address("198.18.0.50"), prefixlen=24, interface=None)
    assert precheck([ok], host) is None
    uncovered = AliasRequest(ip=ipaddress.ip_address("198.19.7.50"), prefixlen=24, interface=None)
    refusal = precheck([ok, uncovered], host)
    assert isinstance(refusal, errors.NoCoveringInterface)
    assert describe(refusal).startswith("NoCoveringInterface: ")
    down = HostState(interfaces=(iface("eth1", stationary("198.18.0.11/24"), carrier=False),))
    assert isinstance(precheck([ok], down), errors.InterfaceDown)

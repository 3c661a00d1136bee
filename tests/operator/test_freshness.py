"""Which agent Lease views must be read again before a decision resting on them is
written (``freshness``): a lapse is acted on only once a read after it confirms it."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

from aliasip_api.lease import AgentLease
from aliasip_operator.freshness import LeaseViews, claimed_silent, invalid_since, newer
from tests.operator.world import at


def lease(renewed: float, holder: str | None = "a", duration: int = 2) -> AgentLease:
    return AgentLease(holder, at(renewed), duration)


def test_a_valid_view_needs_no_read() -> None:
    views = LeaseViews()
    assert views.unproven(["a"], {"a": lease(0)}, at(1.9)) == []


def test_a_lapse_needs_a_read_made_after_it() -> None:
    views = LeaseViews()
    view = {"a": lease(0)}  # expires at 2
    assert views.unproven(["a"], view, at(2)) == ["a"]
    views.confirm("a", lease(0), sent=at(1.5))  # read before the lapse: proves nothing
    assert views.unproven(["a"], view, at(2.5)) == ["a"]
    views.confirm("a", lease(0), sent=at(2.5))  # read after it, still the same Lease
    assert views.unproven(["a"], views.merged(view), at(3)) == []


def test_a_read_showing_a_renewal_replaces_the_stale_view_until_the_watch_catches_up() -> None:
    views = LeaseViews()
    stale = {"a": lease(0)}
    views.confirm("a", lease(4), sent=at(4.5))
    merged = views.merged(stale)
    assert merged["a"] == lease(4)
    assert views.unproven(["a"], merged, at(4.6)) == []
    views.observe("a", lease(2))  # a late event, older than the read: the read stays
    assert views.merged({"a": lease(2)})["a"] == lease(4)
    views.observe("a", lease(4))  # the watch caught up: the read is dropped
    assert views.fresh == {}
    assert views.merged({"a": lease(5)})["a"] == lease(5)


def test_a_later_lapse_needs_another_read() -> None:
    views = LeaseViews()
    views.confirm("a", lease(0), sent=at(2.5))
    later = {"a": lease(10)}  # renewed since, then lapsed again at 12
    assert views.unproven(["a"], views.merged(later), at(13)) == ["a"]


def test_missing_released_and_foreign_leases() -> None:
    views = LeaseViews()
    view = {"b": lease(5, holder=None), "c": lease(5, holder="x")}
    # No Lease at all: one read proves it (it has no moment of lapsing to be after).
    assert views.unproven(["a", "b", "c"], view, at(5.5)) == ["a", "b", "c"]
    views.confirm("a", None, sent=at(5.5))
    views.confirm("b", lease(5, holder=None), sent=at(5.5))
    views.confirm("c", lease(5, holder="x"), sent=at(4))  # before it was taken
    merged = views.merged(view)
    assert "a" not in merged
    assert views.unproven(["a", "b", "c"], merged, at(6)) == ["c"]
    assert invalid_since(lease(5, holder=None), "b") == at(5)
    assert invalid_since(lease(5), "a") == at(5) + timedelta(seconds=2)
    assert invalid_since(None, "a") is None


def test_a_read_that_found_no_lease_counts_until_the_watch_says_otherwise() -> None:
    views = LeaseViews()
    views.confirm("a", None, sent=at(3))
    assert views.merged({"a": lease(0)}) == {}
    views.observe("a", lease(4))
    assert views.merged({"a": lease(4)}) == {"a": lease(4)}


def test_newer_is_the_later_renew_time() -> None:
    assert newer(lease(2), lease(1))
    assert not newer(lease(1), lease(1))
    assert not newer(None, lease(1))
    assert newer(lease(1), None)
    assert not newer(AgentLease("a", None, 2), lease(1))


def test_a_node_claimed_silent_needs_a_read_made_after_the_latest_claim() -> None:
    """Evidence per node rests on the node not having renewed since the claims: its Lease
    (valid in the view) is read once after the latest claim, and not again."""
    views = LeaseViews()
    b = replace(lease(4.0, "b"), silent=(("a", at(4.2)),))
    c = replace(lease(4.0, "c"), silent=(("a", at(4.5)),))
    view = {"a": lease(4.0), "b": b, "c": c}
    assert claimed_silent(view) == {"a": at(4.5)}
    assert views.unproven(["a", "b", "c"], view, at(4.6)) == ["a"]  # valid, yet claimed
    views.confirm("a", lease(4.0), at(4.4))
    assert views.unproven(["a"], view, at(4.6)) == ["a"]  # read before the latest claim
    views.confirm("a", lease(4.0), at(4.55))
    assert views.unproven(["a", "b", "c"], view, at(4.6)) == []


def test_the_moment_a_read_must_follow() -> None:
    """What a read must be sent after to prove a view (shared reads compare with it)."""
    views = LeaseViews()
    assert views.needed_after("a", {"a": lease(0)}, at(1)) is None  # valid: any read
    assert views.needed_after("a", {"a": lease(0)}, at(3)) == at(2)  # lapsed at 2
    assert views.needed_after("a", {}, at(3)) is None  # no Lease: any read
    claim = replace(lease(0.5, holder="b"), silent=(("a", at(0.8)),))
    assert views.needed_after("a", {"a": lease(0), "b": claim}, at(1)) == at(0.8)
    assert views.needed_after("a", {"a": lease(0), "b": claim}, at(3)) == at(2)

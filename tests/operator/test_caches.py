"""The operator's caches of its two costly decision inputs (handlers.parse_cached and
handlers.conflicts_cached): the same answers as computing afresh, recomputed exactly when
what they depend on changed."""

from __future__ import annotations

from typing import Any

import pytest

from aliasip_api.errors import InvalidAliasIP
from aliasip_api.findings import conflict_findings
from aliasip_api.spec import parse_aliasip
from aliasip_operator.handlers import conflicts_cached, parse_cached


def body(name: str, address: str, generation: int = 1, uid: str | None = None) -> dict[str, Any]:
    return {
        "apiVersion": "aliasip.io/v1alpha1",
        "kind": "AliasIP",
        "metadata": {
            "name": name,
            "uid": uid or f"uid-{name}",
            "generation": generation,
            "creationTimestamp": f"2026-11-24T10:00:0{len(name) % 10}Z",
        },
        "spec": {"addresses": [address], "nodes": ["node1", "node2"]},
        "status": {"activeNode": "node1", "epoch": 1},
    }


def test_parsed_once_per_generation_and_equal_to_a_fresh_parse() -> None:
    first = parse_cached(body("web", "198.18.0.50/24"))
    again = body("web", "198.18.0.50/24")
    again["status"] = {"activeNode": "node2", "epoch": 7}  # a status write: same generation
    assert parse_cached(again) is first
    assert first == parse_aliasip({k: v for k, v in again.items() if k != "status"})
    changed = parse_cached(body("web", "198.18.0.51/24", generation=2))
    assert changed is not first
    assert str(changed.spec.addresses[0]) == "198.18.0.51/24"


def test_an_invalid_spec_is_refused_every_time() -> None:
    bad = body("bad", "not-an-address")
    for _ in range(2):
        with pytest.raises(InvalidAliasIP):
            parse_cached(bad)


def test_conflicts_recomputed_only_when_an_aliasip_changed() -> None:
    older = parse_cached(body("a", "198.18.0.60/24"))
    younger = parse_cached(body("bb", "198.18.0.60/24"))
    everyone = {"a": older, "bb": younger}
    found = conflicts_cached(everyone)
    assert found == conflict_findings(everyone.values())
    assert found["bb"] and not found["a"]
    assert conflicts_cached(dict(everyone)) is found  # same objects: the cached answer
    moved = parse_cached(body("bb", "198.18.0.61/24", generation=2))
    fresh = conflicts_cached({"a": older, "bb": moved})
    assert fresh is not found
    assert fresh == {"a": (), "bb": ()}

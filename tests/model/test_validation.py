"""aliasip_api.validation: the kube-apiserver behaviours the model relies on, on small schemas."""

from __future__ import annotations

from typing import Any

import pytest

from aliasip_api.errors import Finding
from aliasip_api.validation import OpenAPISchema, go_regex

OBJECT: dict[str, Any] = {
    "type": "object",
    "properties": {
        "name": {"type": "string", "nullable": True, "enum": ["a", "b"]},
        "size": {"type": "integer", "format": "int64", "default": 3},
        "mode": {"type": "string", "default": "x"},
        "inner": {
            "type": "object",
            "default": {},
            "properties": {"depth": {"type": "integer", "default": 1}},
        },
        "labels": {"type": "object", "additionalProperties": {"type": "string"}},
        "items": {
            "type": "array",
            "x-kubernetes-list-type": "map",
            "x-kubernetes-list-map-keys": ["type"],
            "items": {"type": "object", "properties": {"type": {"type": "string"}}},
        },
        "free": {"type": "object", "x-kubernetes-preserve-unknown-fields": True},
    },
}


def problems(instance: Any, *, strict: bool = True) -> list[tuple[str, str]]:
    schema = OpenAPISchema(OBJECT, strict=strict)
    return [(f.path, f.message) for f in schema.validate(instance, "root")]


def test_nullable_admits_null_and_skips_the_enum() -> None:
    assert problems({"name": None}) == []
    assert problems({"mode": None}) == [("root.mode", "must be of type string (got null)")]


def test_defaults_fill_missing_and_non_nullable_null_fields_recursively() -> None:
    schema = OpenAPISchema(OBJECT)
    assert schema.default({"mode": None, "name": None}) == {
        "name": None,
        "size": 3,
        "mode": "x",
        "inner": {"depth": 1},
    }
    # A null without a default is pruned, as kube-apiserver does since 1.20.
    assert schema.default({"labels": None}) == {"size": 3, "mode": "x", "inner": {"depth": 1}}


def test_prune_drops_undeclared_fields_but_keeps_preserved_ones() -> None:
    schema = OpenAPISchema(OBJECT)
    assert schema.prune(
        {"mode": "y", "junk": 1, "inner": {"junk": 2}, "free": {"any": {"thing": 1}}}
    ) == {"mode": "y", "inner": {}, "free": {"any": {"thing": 1}}}


def test_strict_reports_unknown_fields_lenient_does_not() -> None:
    assert problems({"junk": 1}) == [("root.junk", "unknown field")]
    assert problems({"junk": 1}, strict=False) == []
    assert problems({"free": {"junk": 1}}) == []


def test_map_keys_are_bracketed_in_paths() -> None:
    assert problems({"labels": {"a.b/c": 1}}) == [
        ("root.labels[a.b/c]", "must be of type string (got integer)")
    ]


def test_list_map_keys_must_be_unique() -> None:
    assert problems({"items": [{"type": "A"}, {"type": "B"}, {"type": "A"}]}) == [
        ("root.items[2]", 'duplicate entry with type="A"')
    ]


def test_int64_range() -> None:
    assert problems({"size": 2**63}) == [
        ("root.size", "9223372036854775808 is not a valid int64: out of range for a 64-bit integer")
    ]
    assert problems({"size": 2**63 - 1}) == []


@pytest.mark.parametrize(
    ("pattern", "text", "matches"),
    [
        ("^a$", "a", True),
        ("^a$", "a\n", False),
        ("^[$]$", "$", True),
        (r"^\$$", "$", True),
        (r"^a\\$", "a\\", True),
        ("^(a|b)$", "b\n", False),
    ],
    ids=[
        "plain",
        "final-newline",
        "dollar-in-class",
        "escaped-dollar",
        "escaped-backslash",
        "group",
    ],
)
def test_patterns_follow_re2_end_of_text(pattern: str, text: str, matches: bool) -> None:
    assert bool(go_regex(pattern).search(text)) is matches


def test_transition_rules_run_only_where_both_sides_have_the_field() -> None:
    schema = OpenAPISchema(
        {
            "type": "object",
            "properties": {
                "epoch": {
                    "type": "integer",
                    "x-kubernetes-validations": [{"rule": "self >= oldSelf", "message": "m"}],
                }
            },
        }
    )
    assert schema.validate_update({"epoch": 2}, {"epoch": 1}, "status") == [
        Finding("status.epoch", "must never decrease (it is a fencing token): was 2, now 1")
    ]
    assert schema.validate_update({}, {"epoch": 1}, "status") == []
    assert schema.validate_update({"epoch": 1}, {"epoch": 1}, "status") == []


def test_a_cel_rule_without_a_python_counterpart_is_refused() -> None:
    schema = {
        "type": "string",
        "x-kubernetes-validations": [{"rule": "self.startsWith('a')", "message": "m"}],
    }
    with pytest.raises(LookupError, match="CEL rule without a Python counterpart"):
        OpenAPISchema(schema)

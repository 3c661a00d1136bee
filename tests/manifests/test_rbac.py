"""Least privilege: what each ServiceAccount may do is exactly this table, nothing more.

The table is the reviewable statement of the RBAC: one row per (who, where, API group,
resource, resource names) and the exact verbs. manifests/*-rbac.yaml say why each is needed.
A new API call in the operator or the agent needs a new row here and a rule there.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import pytest

from aliasip_operator.kube import EVENTS_NAMESPACE, EVENTS_NAMESPACES
from tests.manifests.kustomize import REPO, Obj, key

NS = "aliasip-system"
EVENTS_NS = "default"  # Events about cluster-scoped AliasIPs (aliasip_operator.kube)
CLUSTER = "(cluster)"


@dataclass(frozen=True)
class Grant:
    account: str  # ServiceAccount in aliasip-system
    scope: str  # CLUSTER (ClusterRole + ClusterRoleBinding) or the Role's namespace
    group: str  # API group; "" is core
    resource: str
    names: tuple[str, ...] = ()  # resourceNames; () means any name


OPERATOR = "aliasip-operator"
AGENT = "aliasip-agent"

# grant -> exact verbs
TABLE: dict[Grant, set[str]] = {
    # operator, cluster-wide
    Grant(OPERATOR, CLUSTER, "aliasip.io", "aliasips"): {"get", "list", "watch", "patch"},
    Grant(OPERATOR, CLUSTER, "aliasip.io", "aliasips/status"): {"patch"},
    Grant(OPERATOR, CLUSTER, "", "nodes"): {"get", "list", "watch"},
    Grant(OPERATOR, CLUSTER, "apiextensions.k8s.io", "customresourcedefinitions"): {
        "list",
        "watch",
    },
    # operator, in aliasip-system
    Grant(OPERATOR, NS, "coordination.k8s.io", "leases"): {"get", "list", "watch", "create"},
    Grant(OPERATOR, NS, "coordination.k8s.io", "leases", ("aliasip-operator",)): {"update"},
    # operator, in default: its Events about AliasIPs, and nothing else there
    Grant(OPERATOR, EVENTS_NS, "", "events"): {"create"},
    # agent, cluster-wide
    Grant(AGENT, CLUSTER, "aliasip.io", "aliasips"): {"get", "list", "watch"},
    Grant(AGENT, CLUSTER, "aliasip.io", "aliasips/status"): {"patch"},
    # agent, in aliasip-system
    Grant(AGENT, NS, "coordination.k8s.io", "leases"): {"get", "list", "watch", "create", "update"},
}


def _grant_id(grant: Grant) -> str:
    group = grant.group or "core"
    names = f"[{','.join(grant.names)}]" if grant.names else ""
    where = "cluster" if grant.scope == CLUSTER else grant.scope
    return f"{grant.account.removeprefix('aliasip-')}:{where}:{group}/{grant.resource}{names}"


GRANTS = list(TABLE)
GRANT_IDS = [_grant_id(grant) for grant in GRANTS]


def granted(base: list[Obj]) -> dict[Grant, set[str]]:
    """What the bindings in the build really grant, expanded to table rows."""
    roles = {
        (obj["kind"], obj["metadata"].get("namespace"), obj["metadata"]["name"]): obj
        for obj in base
        if obj["kind"] in ("Role", "ClusterRole")
    }
    table: dict[Grant, set[str]] = {}
    for binding in base:
        if binding["kind"] not in ("RoleBinding", "ClusterRoleBinding"):
            continue
        namespace = binding["metadata"].get("namespace")
        ref = binding["roleRef"]
        # A RoleBinding may reference a ClusterRole (granted in its namespace only).
        role_ns = namespace if ref["kind"] == "Role" else None
        role = roles[(ref["kind"], role_ns, ref["name"])]
        scope = CLUSTER if binding["kind"] == "ClusterRoleBinding" else namespace
        for subject in binding["subjects"]:
            for rule in role.get("rules", []):
                for group in rule.get("apiGroups", []):
                    for resource in rule.get("resources", []):
                        grant = Grant(
                            subject["name"],
                            scope,
                            group,
                            resource,
                            tuple(sorted(rule.get("resourceNames", []))),
                        )
                        table.setdefault(grant, set()).update(rule["verbs"])
    return table


def test_granted_rows_are_exactly_the_table(base: list[Obj]) -> None:
    actual = granted(base)
    extra = sorted(map(_grant_id, actual.keys() - TABLE.keys()))
    missing = sorted(map(_grant_id, TABLE.keys() - actual.keys()))
    assert (extra, missing) == ([], [])


@pytest.mark.parametrize("grant", GRANTS, ids=GRANT_IDS)
def test_verbs_are_exactly_what_is_used(base: list[Obj], grant: Grant) -> None:
    assert granted(base).get(grant) == TABLE[grant]


def _roles(base: list[Obj]) -> list[Obj]:
    return [obj for obj in base if obj["kind"] in ("Role", "ClusterRole")]


def test_no_wildcards_no_urls_no_aggregation(base: list[Obj]) -> None:
    for role in _roles(base):
        assert "aggregationRule" not in role, key(role)
        for rule in role["rules"]:
            assert "nonResourceURLs" not in rule, key(role)
            for field in ("apiGroups", "resources", "verbs", "resourceNames"):
                values = rule.get(field, [])
                assert not any("*" in value for value in values), (key(role), field, values)


def test_every_role_is_bound_once_and_every_binding_resolves(base: list[Obj]) -> None:
    roles = {(obj["kind"], obj["metadata"]["name"]) for obj in _roles(base)}
    refs = [
        (obj["roleRef"]["kind"], obj["roleRef"]["name"])
        for obj in base
        if obj["kind"] in ("RoleBinding", "ClusterRoleBinding")
    ]
    assert sorted(refs) == sorted(roles)


@pytest.mark.parametrize("source", ["operator-rbac.yaml", "agent-rbac.yaml"])
def test_every_rule_says_who_uses_it_and_why(source: str) -> None:
    """Each rule is preceded by a comment (who uses it and why) in the source file."""
    lines = (REPO / "manifests" / source).read_text().splitlines()
    rules = [i for i, line in enumerate(lines) if re.match(r"\s*- apiGroups:", line)]
    assert rules
    for i in rules:
        assert lines[i - 1].strip().startswith("#"), f"{source}:{i + 1} has no comment"


def readme_table() -> dict[Grant, set[str]]:
    """The permissions table of manifests/README.md, as rows of this module's table."""
    rows: dict[Grant, set[str]] = {}
    for line in (REPO / "manifests" / "README.md").read_text().splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if len(cells) != 5 or cells[0] not in ("operator", "agent"):
            continue
        who, where, resource, names, verbs = cells
        group, _, plural = resource.strip("`").partition("/")
        grant = Grant(
            f"aliasip-{who}",
            CLUSTER if where == "cluster" else where,
            "" if group == "core" else group,
            plural,
            () if names == "any" else (names,),
        )
        assert grant not in rows, line
        rows[grant] = {verb.strip() for verb in verbs.split(",")}
    return rows


def test_the_readme_states_the_same_table() -> None:
    assert readme_table() == TABLE


def test_the_operator_may_create_events_where_it_posts_them() -> None:
    """The Events namespace of the table is the operator's default, one kube-apiserver
    admits Events about cluster-scoped objects in."""
    assert EVENTS_NS == EVENTS_NAMESPACE
    assert EVENTS_NS in EVENTS_NAMESPACES

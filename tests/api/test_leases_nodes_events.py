"""Leases, Nodes and Events: the built-in types the operator and agents use.

Leases (coordination.k8s.io/v1, namespaced): leaseStrategy allows create on PUT and
refuses an update without resourceVersion; renewals conflict like any update.
Nodes: status.conditions merge by ``type`` under a strategic merge patch.
Events (core v1): listed by ``involvedObject`` field selectors, as ``kubectl describe``
does; they expire after --event-ttl (1 h by default); kube-apiserver's namespace rule
(``legacyValidateEvent``) decides where an Event about a cluster-scoped object may live.
"""

from __future__ import annotations

import datetime
from typing import Any

import pytest

from aliasip_lab.apiserver.errors import ApiError
from aliasip_lab.apiserver.operations import Api
from aliasip_lab.apiserver.registry import BUILTIN_TYPES
from tests.api.support import STRATEGIC, TABLE, ApiLab, node

LEASES = "/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases"
EVENTS = "/api/v1/namespaces/default/events"


def lease(name: str, holder: str, renew: str = "2025-01-01T00:00:00.000000Z") -> dict[str, Any]:
    return {
        "apiVersion": "coordination.k8s.io/v1",
        "kind": "Lease",
        "metadata": {"name": name},
        "spec": {"holderIdentity": holder, "leaseDurationSeconds": 10, "renewTime": renew},
    }


def test_lease_create_renew_and_conflict(lab: ApiLab) -> None:
    created = lab.client.post(LEASES, lease("node1", "agent-node1"))
    assert created.status == 201 and created.json["metadata"]["namespace"] == "kube-node-lease"
    # Two writers read the same version; the first renewal wins, the second gets 409.
    mine = created.json
    theirs = {**mine, "spec": {**mine["spec"], "holderIdentity": "someone-else"}}
    renewed = lab.client.put(
        f"{LEASES}/node1",
        {**mine, "spec": {**mine["spec"], "renewTime": "2025-01-01T00:00:05.000000Z"}},
    )
    assert renewed.status == 200
    assert int(renewed.json["metadata"]["resourceVersion"]) > int(
        mine["metadata"]["resourceVersion"]
    )
    lost = lab.client.put(f"{LEASES}/node1", theirs)
    assert lost.status == 409 and lost.json["reason"] == "Conflict"
    assert lab.client.get(f"{LEASES}/node1").json["spec"]["holderIdentity"] == "agent-node1"
    # leaseStrategy.AllowUnconditionalUpdate() is false; AllowCreateOnUpdate() is true.
    unconditional = lab.client.put(f"{LEASES}/node1", lease("node1", "x"))
    assert unconditional.status == 422
    assert lab.client.put(f"{LEASES}/node2", lease("node2", "agent-node2")).status == 201


def test_node_conditions_patched_by_type_and_printed_by_kubectl_columns(lab: ApiLab) -> None:
    lab.client.post("/api/v1/nodes", node("n1", **{"node-role.kubernetes.io/edge": ""}))
    patch = {
        "status": {
            "$setElementOrder/conditions": [{"type": "Ready"}, {"type": "MemoryPressure"}],
            "conditions": [{"type": "Ready", "status": "False", "reason": "NodeStatusUnknown"}],
        }
    }
    reply = lab.client.patch("/api/v1/nodes/n1/status", patch, STRATEGIC)
    assert reply.status == 200, reply.body
    assert [(c["type"], c["status"]) for c in reply.json["status"]["conditions"]] == [
        ("Ready", "False"),
        ("MemoryPressure", "False"),
    ]
    table = lab.client.request("GET", "/api/v1/nodes", accept=TABLE).json
    assert [c["name"] for c in table["columnDefinitions"][:5]] == [
        "Name",
        "Status",
        "Roles",
        "Age",
        "Version",
    ]
    name, status, roles, _age, version = table["rows"][0]["cells"][:5]
    assert (name, status, roles, version) == ("n1", "NotReady", "edge", "v1.32.0")


def _event(
    name: str, kind: str, obj: str, uid: str, namespace: str = "", type_: str = "Normal"
) -> dict[str, Any]:
    involved = {"apiVersion": "aliasip.io/v1alpha1", "kind": kind, "name": obj, "uid": uid}
    if namespace:
        involved["namespace"] = namespace
    return {
        "apiVersion": "v1",
        "kind": "Event",
        "metadata": {"name": name},
        "involvedObject": involved,
        "reason": "Moved",
        "message": f"{obj} moved",
        "type": type_,
        "source": {"component": "aliasip-operator"},
        "count": 1,
        "firstTimestamp": "2025-01-01T00:00:00Z",
        "lastTimestamp": "2025-01-01T00:00:00Z",
    }


def test_events_listed_by_involved_object(lab: ApiLab) -> None:
    assert lab.client.post(EVENTS, _event("web.1", "AliasIP", "web", "u1")).status == 201
    lab.client.post(EVENTS, _event("web.2", "AliasIP", "web", "u1", type_="Warning"))
    lab.client.post(EVENTS, _event("db.1", "AliasIP", "db", "u2"))
    lab.client.post(EVENTS, _event("pod.1", "Pod", "web", "u3", namespace="default"))

    def names(selector: str, path: str = "/api/v1/events") -> list[str]:
        reply = lab.client.get(path, fieldSelector=selector)
        assert reply.status == 200, reply.body
        return [e["metadata"]["name"] for e in reply.json["items"]]

    # what kubectl describe asks for a cluster-scoped object: namespace ""
    described = (
        "involvedObject.name=web,involvedObject.namespace=,"
        "involvedObject.kind=AliasIP,involvedObject.uid=u1"
    )
    assert names(described) == ["web.1", "web.2"]
    assert names("involvedObject.name=web", EVENTS) == ["pod.1", "web.1", "web.2"]
    assert names("involvedObject.kind=AliasIP,type=Warning") == ["web.2"]
    assert names("source=aliasip-operator,reason=Moved,involvedObject.uid=u2") == ["db.1"]
    table = lab.client.request("GET", EVENTS, accept=TABLE).json
    assert [c["name"] for c in table["columnDefinitions"] if c["priority"] == 0] == [
        "Last Seen", "Type", "Reason", "Object", "Message",
    ]  # fmt: skip
    assert table["rows"][0]["cells"][3] == "aliasip/db"


EVENT_TIME = "2025-01-01T00:00:00.000000Z"


def _new_event(name: str, involved_ns: str, event_time: bool = True) -> dict[str, Any]:
    """An Event about AliasIP ``web`` as the operator writes it (``eventTime`` set)."""
    body = _event(name, "AliasIP", "web", "u1", namespace=involved_ns)
    if event_time:
        body |= {
            "eventTime": EVENT_TIME,
            "action": "Moved",
            "reportingComponent": "aliasip-operator",
            "reportingInstance": "op-a",
        }
    return body


def _mismatch(involved_ns: str, event_name: str) -> str:
    return (
        f'Event "{event_name}" is invalid: involvedObject.namespace: '
        f'Invalid value: "{involved_ns}": does not match event.namespace'
    )


# (Event's namespace, involvedObject.namespace, eventTime set, admitted): legacyValidateEvent.
EVENT_NAMESPACE_RULE = [
    ("default", "", True, True),  # a cluster-scoped object: kubectl describe finds it
    ("kube-system", "", True, True),
    ("aliasip-system", "", True, False),  # what the operator used to write: refused
    ("aliasip-system", "aliasip-system", True, True),  # matching namespaces
    ("aliasip-system", "default", True, True),  # eventTime set: not compared upstream either
    ("default", "", False, True),
    ("kube-system", "", False, False),  # without eventTime only default
    ("aliasip-system", "", False, False),
    ("aliasip-system", "aliasip-system", False, True),
    ("aliasip-system", "default", False, False),  # mismatching namespaces
]


@pytest.mark.parametrize(
    ("namespace", "involved_ns", "event_time", "admitted"),
    EVENT_NAMESPACE_RULE,
    ids=[
        f"{ns}-involved[{inv}]-{'eventTime' if et else 'legacy'}-{'ok' if ok else 'refused'}"
        for ns, inv, et, ok in EVENT_NAMESPACE_RULE
    ],
)
def test_event_namespace_rule_as_kube_apiserver(
    namespace: str, involved_ns: str, event_time: bool, admitted: bool
) -> None:
    api = Api()
    events = next(t for t in BUILTIN_TYPES if t.plural == "events")
    namespaces = next(t for t in BUILTIN_TYPES if t.plural == "namespaces")
    if namespace == "aliasip-system":
        api.create(namespaces, "", {"metadata": {"name": namespace}})
    body = _new_event("web.1", involved_ns, event_time)
    if admitted:
        assert api.create(events, namespace, body).code == 201
        return
    with pytest.raises(ApiError) as refused:
        api.create(events, namespace, body)
    assert (refused.value.code, refused.value.reason) == (422, "Invalid")
    assert refused.value.message == _mismatch(involved_ns, "web.1")
    assert refused.value.status()["details"]["causes"] == [
        {
            "reason": "FieldValueInvalid",
            "message": f'Invalid value: "{involved_ns}": does not match event.namespace',
            "field": "involvedObject.namespace",
        }
    ]


def test_an_event_about_a_cluster_scoped_object_lives_in_default(lab: ApiLab) -> None:
    """Over HTTP: admitted in default with an empty involvedObject.namespace (and found by
    kubectl describe's selector), refused in aliasip-system; matching namespaces admitted,
    mismatching ones refused; an update is held to the same rule."""
    ns = {"metadata": {"name": "aliasip-system"}}
    assert lab.client.post("/api/v1/namespaces", ns).status == 201
    system = "/api/v1/namespaces/aliasip-system/events"
    accepted = lab.client.post(EVENTS, _new_event("web.1", ""))
    assert accepted.status == 201, accepted.body
    described = (
        "involvedObject.kind=AliasIP,involvedObject.uid=u1,involvedObject.name=web,"
        "involvedObject.namespace="
    )
    found = lab.client.get("/api/v1/events", fieldSelector=described).json["items"]
    assert [e["metadata"]["name"] for e in found] == ["web.1"]

    refused = lab.client.post(system, _new_event("web.2", ""))
    assert (refused.status, refused.json["reason"]) == (422, "Invalid")
    assert refused.json["message"] == _mismatch("", "web.2")
    assert refused.json["details"]["causes"][0]["field"] == "involvedObject.namespace"

    assert lab.client.post(system, _new_event("web.3", "aliasip-system")).status == 201
    mismatched = lab.client.post(system, _new_event("web.4", "default", event_time=False))
    assert (mismatched.status, mismatched.json["message"]) == (422, _mismatch("default", "web.4"))
    assert lab.client.post(system, _new_event("web.5", "aliasip-system", False)).status == 201

    moved = {**accepted.json, "involvedObject": {**accepted.json["involvedObject"]}}
    moved["involvedObject"]["namespace"] = "other"
    del moved["eventTime"]
    updated = lab.client.put(f"{EVENTS}/web.1", moved)
    assert (updated.status, updated.json["message"]) == (422, _mismatch("other", "web.1"))


def test_events_expire_after_the_event_ttl() -> None:
    clock = [1000.0]
    api = Api(event_ttl_s=60, monotonic=lambda: clock[0])
    events = next(t for t in BUILTIN_TYPES if t.plural == "events")
    api.create(events, "default", _event("old", "AliasIP", "web", "u1"))
    clock[0] += 30
    api.create(events, "default", _event("young", "AliasIP", "web", "u1"))
    clock[0] += 31  # "old" is 61 s old, "young" 31 s
    api.create(events, "default", _event("trigger", "AliasIP", "web", "u1"))
    names = [e["metadata"]["name"] for e in api.list_objects(events, "default")[0]]
    assert names == ["trigger", "young"]
    assert api.sizes()["event_expiry"] == 2


def test_namespace_deletion_removes_its_objects(lab: ApiLab) -> None:
    lab.client.post(
        "/api/v1/namespaces", {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "tmp"}}
    )
    lab.client.post("/apis/coordination.k8s.io/v1/namespaces/tmp/leases", lease("l", "x"))
    reply = lab.client.delete("/api/v1/namespaces/tmp")
    assert reply.status == 200 and reply.json["status"]["phase"] == "Terminating"
    assert reply.json["metadata"]["deletionTimestamp"] <= datetime.datetime.now(
        datetime.UTC
    ).strftime("%Y-%m-%dT%H:%M:%SZ")
    assert lab.client.get("/api/v1/namespaces/tmp").status == 404
    assert lab.client.get("/apis/coordination.k8s.io/v1/namespaces/tmp/leases/l").status == 404

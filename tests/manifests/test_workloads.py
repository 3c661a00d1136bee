"""The security- and availability-relevant facts of the two workloads, one row each."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from aliasip_operator.kube import EVENTS_NAMESPACE, EVENTS_NAMESPACES
from aliasip_operator.probes import LOOP_ANSWER_S
from tests.manifests.kustomize import Obj

AGENT = ("DaemonSet", "aliasip-agent")
OPERATOR = ("Deployment", "aliasip-operator")
WORKLOADS = [AGENT, OPERATOR]
WORKLOAD_IDS = ["agent", "operator"]

# The longest a lost node may keep an operator replica before Kubernetes evicts it (the
# default, DefaultTolerationSeconds, is 300 s).
MAX_OPERATOR_TOLERATION_S = 30


def pod(workload: Obj) -> Obj:
    spec: Obj = workload["spec"]["template"]["spec"]
    return spec


def container(workload: Obj) -> Obj:
    containers: list[Obj] = pod(workload)["containers"]
    assert len(containers) == 1
    return containers[0]


def sc(workload: Obj) -> Obj:
    context: Obj = container(workload).get("securityContext", {})
    return context


def env(workload: Obj, name: str) -> Obj:
    entries = [e for e in container(workload).get("env", []) if e["name"] == name]
    assert len(entries) == 1, name
    entry: Obj = entries[0]
    return entry


def toleration(workload: Obj, taint: str) -> Obj:
    found = [t for t in pod(workload).get("tolerations", []) if t.get("key") == taint]
    assert len(found) == 1, taint
    entry: Obj = found[0]
    return entry


Fact = tuple[str, tuple[str, str], Callable[[Obj], Any], Any]

FACTS: list[Fact] = [
    # agent: the host's network, only the two capabilities it uses, not privileged
    ("agent-hostNetwork", AGENT, lambda w: pod(w).get("hostNetwork"), True),
    ("agent-dnsPolicy", AGENT, lambda w: pod(w).get("dnsPolicy"), "ClusterFirstWithHostNet"),
    ("agent-no-hostPID", AGENT, lambda w: pod(w).get("hostPID", False), False),
    ("agent-no-hostIPC", AGENT, lambda w: pod(w).get("hostIPC", False), False),
    # agent: the monitoring path's keys from the Secret, its port declared
    (
        "agent-heartbeat-keys",
        AGENT,
        lambda w: (
            container(w)["args"][-2:],
            [m["mountPath"] for m in container(w)["volumeMounts"] if m["name"] == "heartbeat-keys"],
            [v["secret"]["secretName"] for v in pod(w)["volumes"] if v["name"] == "heartbeat-keys"],
        ),
        (
            ["--heartbeat-keys", "/etc/aliasip/heartbeat"],
            ["/etc/aliasip/heartbeat"],
            ["aliasip-heartbeat"],
        ),
    ),
    (
        "agent-ports",
        AGENT,
        lambda w: [(p["name"], p["containerPort"], p["protocol"]) for p in container(w)["ports"]],
        [("heartbeat", 7947, "UDP"), ("health", 7948, "TCP")],
    ),
    (
        "agent-caps-added",
        AGENT,
        lambda w: sorted(sc(w)["capabilities"]["add"]),
        ["NET_ADMIN", "NET_RAW"],
    ),
    ("agent-caps-dropped", AGENT, lambda w: sc(w)["capabilities"]["drop"], ["ALL"]),
    ("agent-not-privileged", AGENT, lambda w: sc(w).get("privileged", False), False),
    ("agent-no-escalation", AGENT, lambda w: sc(w).get("allowPrivilegeEscalation"), False),
    ("agent-readonly-root", AGENT, lambda w: sc(w).get("readOnlyRootFilesystem"), True),
    ("agent-uid-0", AGENT, lambda w: sc(w).get("runAsUser"), 0),
    (
        "agent-seccomp",
        AGENT,
        lambda w: pod(w)["securityContext"]["seccompProfile"]["type"],
        "RuntimeDefault",
    ),
    (
        "agent-no-host-volumes",
        AGENT,
        lambda w: [v["name"] for v in pod(w).get("volumes", []) if "hostPath" in v],
        [],
    ),
    (
        "agent-NODE_NAME-from-spec.nodeName",
        AGENT,
        lambda w: env(w, "NODE_NAME")["valueFrom"]["fieldRef"]["fieldPath"],
        "spec.nodeName",
    ),
    (
        "agent-command",
        AGENT,
        lambda w: container(w)["command"] + container(w)["args"],
        [
            "aliasip-agent",
            "run",
            "--node",
            "$(NODE_NAME)",
            "--health-port",
            "7948",
            "--health-address",
            "127.0.0.1",
            "--heartbeat-keys",
            "/etc/aliasip/heartbeat",
        ],
    ),
    # agent: probed on the node's loopback, on the port its flag names
    (
        "agent-probes",
        AGENT,
        lambda w: [
            (get["host"], get["path"], get["port"])
            for kind in ("livenessProbe", "readinessProbe")
            for get in [container(w)[kind]["httpGet"]]
        ],
        [("127.0.0.1", "/livez", "health"), ("127.0.0.1", "/readyz", "health")],
    ),
    (
        "agent-tolerates-every-taint",
        AGENT,
        lambda w: pod(w)["tolerations"],
        [{"operator": "Exists"}],
    ),
    (
        "agent-priority",
        AGENT,
        lambda w: pod(w).get("priorityClassName"),
        "system-node-critical",
    ),
    (
        "agent-rolling-one-node-no-surge",
        AGENT,
        lambda w: w["spec"]["updateStrategy"],
        {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 1, "maxSurge": 0}},
    ),
    (
        "agent-short-grace",
        AGENT,
        lambda w: pod(w)["terminationGracePeriodSeconds"] <= 10,
        True,
    ),
    ("agent-account", AGENT, lambda w: pod(w)["serviceAccountName"], "aliasip-agent"),
    # operator: two replicas that never share a node, quick to leave a lost node
    ("operator-replicas", OPERATOR, lambda w: w["spec"]["replicas"], 2),
    (
        "operator-leader-election",
        OPERATOR,
        lambda w: "--leader-elect" in container(w)["args"],
        True,
    ),
    ("operator-command", OPERATOR, lambda w: container(w)["command"], ["aliasip-operator"]),
    *(
        (
            f"operator-tolerates-{taint.split('/')[1]}-briefly",
            OPERATOR,
            lambda w, taint=taint: (
                toleration(w, taint)["effect"],
                toleration(w, taint)["tolerationSeconds"] <= MAX_OPERATOR_TOLERATION_S,
            ),
            ("NoExecute", True),
        )
        for taint in ("node.kubernetes.io/not-ready", "node.kubernetes.io/unreachable")
    ),
    (
        "operator-control-plane",
        OPERATOR,
        lambda w: toleration(w, "node-role.kubernetes.io/control-plane")["effect"],
        "NoSchedule",
    ),
    (
        "operator-anti-affinity-per-node",
        OPERATOR,
        lambda w: [
            (term["topologyKey"], term["labelSelector"]["matchLabels"])
            for term in pod(w)["affinity"]["podAntiAffinity"][
                "requiredDuringSchedulingIgnoredDuringExecution"
            ]
        ],
        [("kubernetes.io/hostname", {"app.kubernetes.io/name": "aliasip-operator"})],
    ),
    (
        "operator-probes-on-health-port",
        OPERATOR,
        lambda w: (
            container(w)["livenessProbe"]["httpGet"]["port"],
            container(w)["readinessProbe"]["httpGet"]["port"],
            [p["name"] for p in container(w)["ports"]],
        ),
        ("health", "health", ["health"]),
    ),
    (
        "operator-probe-paths",
        OPERATOR,
        lambda w: (
            container(w)["livenessProbe"]["httpGet"]["path"],
            container(w)["readinessProbe"]["httpGet"]["path"],
        ),
        ("/livez", "/readyz"),
    ),
    ("operator-non-root", OPERATOR, lambda w: pod(w)["securityContext"]["runAsNonRoot"], True),
    ("operator-uid-not-0", OPERATOR, lambda w: pod(w)["securityContext"]["runAsUser"] != 0, True),
    ("operator-no-caps", OPERATOR, lambda w: sc(w)["capabilities"], {"drop": ["ALL"]}),
    ("operator-no-escalation", OPERATOR, lambda w: sc(w)["allowPrivilegeEscalation"], False),
    ("operator-readonly-root", OPERATOR, lambda w: sc(w)["readOnlyRootFilesystem"], True),
    ("operator-no-host-network", OPERATOR, lambda w: pod(w).get("hostNetwork", False), False),
    (
        "operator-seccomp",
        OPERATOR,
        lambda w: pod(w)["securityContext"]["seccompProfile"]["type"],
        "RuntimeDefault",
    ),
    (
        "operator-resources",
        OPERATOR,
        lambda w: sorted(
            f"{kind}.{res}" for kind, values in container(w)["resources"].items() for res in values
        ),
        ["limits.cpu", "limits.memory", "requests.cpu", "requests.memory"],
    ),
    ("operator-account", OPERATOR, lambda w: pod(w)["serviceAccountName"], "aliasip-operator"),
]


@pytest.mark.parametrize(
    ("workload", "get", "expected"), [f[1:] for f in FACTS], ids=[f[0] for f in FACTS]
)
def test_fact(
    by_key: dict[tuple[str, str], Obj],
    workload: tuple[str, str],
    get: Callable[[Obj], Any],
    expected: Any,
) -> None:
    assert get(by_key[workload]) == expected


@pytest.mark.parametrize("workload", WORKLOADS, ids=WORKLOAD_IDS)
def test_memory_is_bounded_and_requests_set(
    by_key: dict[tuple[str, str], Obj], workload: tuple[str, str]
) -> None:
    resources = container(by_key[workload])["resources"]
    assert {"cpu", "memory"} <= resources["requests"].keys()
    assert "memory" in resources["limits"]


@pytest.mark.parametrize("workload", WORKLOADS, ids=WORKLOAD_IDS)
def test_pod_namespace_comes_from_the_downward_api(
    by_key: dict[tuple[str, str], Obj], workload: tuple[str, str]
) -> None:
    entry = env(by_key[workload], "POD_NAMESPACE")
    assert entry["valueFrom"]["fieldRef"]["fieldPath"] == "metadata.namespace"


def test_the_leader_lease_is_the_one_the_operator_may_update(
    by_key: dict[tuple[str, str], Obj],
) -> None:
    args = container(by_key[OPERATOR])["args"]
    lease_args = [a.split("=", 1)[1] for a in args if a.startswith("--leader-election-lease=")]
    updatable = [
        name
        for rule in by_key[("Role", "aliasip-operator")]["rules"]
        if "update" in rule["verbs"]
        for name in rule.get("resourceNames", [])
    ]
    assert lease_args == updatable == ["aliasip-operator"]


def test_the_operator_posts_events_where_its_role_lets_it(
    by_key: dict[tuple[str, str], Obj],
) -> None:
    """``--events-namespace`` is the namespace of the one Role granting Events to the
    operator, and one where kube-apiserver admits Events about cluster-scoped objects."""
    args = container(by_key[OPERATOR])["args"]
    namespaces = [a.split("=", 1)[1] for a in args if a.startswith("--events-namespace=")]
    granting = [
        obj["metadata"]["namespace"]
        for obj in by_key.values()
        if obj["kind"] == "Role"
        and obj["metadata"]["name"].startswith("aliasip-operator")
        and any("events" in rule["resources"] for rule in obj["rules"])
    ]
    assert namespaces == granting == [EVENTS_NAMESPACE]
    assert EVENTS_NAMESPACE in EVENTS_NAMESPACES


@pytest.mark.parametrize("workload", WORKLOADS, ids=WORKLOAD_IDS)
def test_selector_matches_the_pod_template(
    by_key: dict[tuple[str, str], Obj], workload: tuple[str, str]
) -> None:
    obj = by_key[workload]
    selector = obj["spec"]["selector"]["matchLabels"]
    labels = obj["spec"]["template"]["metadata"]["labels"]
    assert selector.items() <= labels.items()


# Ports other node components and common add-ons hold on every node (the agent is in the
# host's network): kubelet, kube-proxy, MetalLB (metrics, memberlist), node-exporter.
NODE_PORTS = {("TCP", 10248), ("TCP", 10250), ("TCP", 10256), ("TCP", 7472), ("TCP", 7946),
              ("UDP", 7946), ("TCP", 9100)}  # fmt: skip


def _flag(args: list[str], name: str) -> str:
    assert args.count(name) == 1, name
    return args[args.index(name) + 1]


def test_the_agents_health_flags_match_its_declared_port_and_probes(
    by_key: dict[tuple[str, str], Obj],
) -> None:
    """The port the agent listens on is the one declared and probed, on the address the
    probes ask (loopback: nothing on the node's network reaches it), and it is free of
    the ports other node components hold."""
    agent = container(by_key[AGENT])
    ports = {p["name"]: p for p in agent["ports"]}
    health = ports["health"]
    assert int(_flag(agent["args"], "--health-port")) == health["containerPort"]
    assert health["hostPort"] == health["containerPort"]  # hostNetwork: the node's port
    assert _flag(agent["args"], "--health-address") == "127.0.0.1"
    assert agent["livenessProbe"]["httpGet"]["host"] == "127.0.0.1"
    taken = {(p["protocol"], p["containerPort"]) for p in agent["ports"]}
    assert len(taken) == len(agent["ports"])
    assert not taken & NODE_PORTS


@pytest.mark.parametrize("workload", WORKLOADS, ids=WORKLOAD_IDS)
def test_probes_answer_within_their_timeout_and_liveness_is_patient(
    by_key: dict[tuple[str, str], Obj], workload: tuple[str, str]
) -> None:
    """Liveness restarts: never for less than 30 s of consecutive failures, and the
    operator's kopf loop bound (1 s, probes.LOOP_ANSWER_S) fits in the timeout. The
    agent, whose restart under load is the costlier, waits a minute."""
    live = container(by_key[workload])["livenessProbe"]
    ready = container(by_key[workload])["readinessProbe"]
    patience = live["periodSeconds"] * live["failureThreshold"]
    assert patience >= (60 if workload == AGENT else 30)
    assert live["timeoutSeconds"] > LOOP_ANSWER_S
    assert ready["timeoutSeconds"] > LOOP_ANSWER_S
    assert ready["periodSeconds"] <= live["periodSeconds"]

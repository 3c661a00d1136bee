"""The probes of real operator processes (``python -m aliasip_operator.main``), asked over
HTTP inside the lab's namespace as kubelet asks them: both replicas live and ready (the
leader's answers made on kopf's loop, with kopf's watches listed and its Lease watch
alive; the standby's from its campaign), and a leader that waits for the CRD live but
not ready until kopf runs. A blocked kopf loop is tested in-process
(tests/operator/test_probes.py): from outside, only freezing the whole process could
block it, which no probe can tell from a dead process.
"""

from __future__ import annotations

import http.client
import json

from aliasip_lab.nsenter import netns
from tests.api.support import ALIASIP_CRD, ApiLab, eventually, install_crd, load_yaml, node
from tests.operatorproc.support import NS, Agents, Operator, leader, operators, prepare


def health_port(op: Operator) -> int | None:
    """The port the operator logged at start (``--health-port=0``: any free one)."""
    for line in op.output().splitlines():
        if line.startswith("{"):
            record = json.loads(line)
            if record.get("msg") == "starting":
                return int(record["healthPort"])
    return None


def probe(lab: ApiLab, op: Operator, path: str) -> tuple[int, str]:
    port = eventually(lambda: health_port(op), timeout=10)
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=3)
    try:
        with netns(lab.namespace):
            conn.connect()
        conn.request("GET", path)
        reply = conn.getresponse()
        return reply.status, reply.read().decode()
    finally:
        conn.close()


def checks(body: str) -> list[str]:
    """The check lines' marks and names: ``[+]loop``, ``[-]kopf``, ..."""
    return [line.split(" ")[0] for line in body.splitlines() if line.startswith("[")]


def test_the_leader_is_ready_on_kopfs_loop_and_the_standby_by_its_campaign(lab: ApiLab) -> None:
    prepare(lab)
    with Agents(lab).running(), operators(lab, "op-a", "op-b") as ops:
        first = eventually(lambda: leader(lab), timeout=10)
        by_name = {op.identity: op for op in ops}
        lead = by_name[first]
        standby = next(op for op in ops if op is not lead)

        def ready(op: Operator) -> str | None:
            status, body = probe(lab, op, "/readyz?verbose")
            return body if status == 200 else None

        try:
            body = eventually(lambda: ready(lead), timeout=15)
        except AssertionError:
            print(lead.output())
            raise
        assert checks(body) == ["[+]loop", "[+]leader", "[+]watches", "[+]lease-watch"]
        assert "kopf's event loop answered in" in body
        body = eventually(lambda: ready(standby), timeout=10)
        assert checks(body) == ["[+]api"] and "standing by" in body
        for op in ops:
            assert probe(lab, op, "/livez") == (200, "ok\n")
            assert probe(lab, op, "/healthz") == (200, "ok\n")
        status, body = probe(lab, lead, "/livez?verbose")
        assert status == 200 and checks(body) == ["[+]loop"]
        status, body = probe(lab, standby, "/livez?verbose")
        assert status == 200 and checks(body) == ["[+]campaign"]


def test_a_leader_waiting_for_the_crd_is_live_but_not_ready(lab: ApiLab) -> None:
    assert lab.client.post("/api/v1/namespaces", {"metadata": {"name": NS}}).status == 201
    assert lab.client.post("/api/v1/nodes", node("node1")).status == 201
    with operators(lab, "op-a") as (op,):
        eventually(lambda: leader(lab) == "op-a", timeout=10)
        eventually(lambda: '"waiting for the CRD"' in op.output(), timeout=10)
        status, body = probe(lab, op, "/readyz")
        assert status == 503 and checks(body) == ["[-]kopf"]
        assert "kopf not started yet" in body
        assert probe(lab, op, "/livez") == (200, "ok\n")
        install_crd(lab, load_yaml(ALIASIP_CRD))
        try:
            eventually(lambda: probe(lab, op, "/readyz") == (200, "ok\n"), timeout=15)
        except AssertionError:
            print(op.output())
            raise
        assert '"msg": "readyz passing"' in op.output()

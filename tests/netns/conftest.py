"""Fixtures for tests on a real kernel: a LAN of namespaces, destroyed after each test.

The LAN is built with iproute2 and inspected with iproute2 or a plain pyroute2 dump
(``support``), never through the agent's own modules, so a test cannot agree with a bug
it shares code with. Every LAN is destroyed after its test, also when the test fails.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from aliasip_lab.lan import Lan, existing_namespaces


@pytest.fixture(scope="session", autouse=True)
def _require_root() -> None:
    if os.geteuid() != 0:
        pytest.fail("the netns tests need root (network namespaces, raw sockets)")


@pytest.fixture
def lan() -> Iterator[Lan]:
    """Two nodes and a client on one bridge; removed afterwards, whatever happens."""
    made = Lan.create(nodes=2)
    try:
        yield made
    finally:
        made.destroy()
        leftover = [ns for ns in existing_namespaces() if ns.startswith(made.tag + "-")]
        assert not leftover, f"namespaces left behind: {leftover}"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "/tests/netns/" in str(item.path):
            item.add_marker(pytest.mark.netns)

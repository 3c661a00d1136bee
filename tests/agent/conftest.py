"""Fixtures for the agent's process tests: a cluster (LAN, management network, API server)
per test, removed afterwards, also when the test fails. The pure tests need none of it."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from tests.agent.support import Cluster, cluster


@pytest.fixture
def lab() -> Iterator[Cluster]:
    if os.geteuid() != 0:
        pytest.fail("the agent's process tests need root (network namespaces, raw sockets)")
    with cluster() as made:
        yield made


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "/tests/agent/" in str(item.path) and "lab" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.netns)

"""Fixtures for the end-to-end tests: one lab (LAN, API server, operator, two agents) per
test, removed afterwards, also when the test fails."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from tests.e2e.support import E2E, e2e


@pytest.fixture
def lab() -> Iterator[E2E]:
    if os.geteuid() != 0:
        pytest.fail("the end-to-end tests need root (network namespaces, raw sockets)")
    with e2e() as made:
        yield made


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "/tests/e2e/" in str(item.path):
            item.add_marker(pytest.mark.netns)

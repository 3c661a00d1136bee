"""Operator process tests: the embedded API server in a private network namespace.

Every test gets its own namespace (removed afterwards, also on failure); the operator
processes run inside it through ``ip netns exec`` and the test's own clients connect
from inside it too.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from tests.api.support import ApiLab, api_lab


@pytest.fixture(scope="session", autouse=True)
def _require_root() -> None:
    if os.geteuid() != 0:
        pytest.fail("the operator process tests need root (they build network namespaces)")


@pytest.fixture
def lab() -> Iterator[ApiLab]:
    with api_lab() as made:
        yield made


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "/tests/operatorproc/" in str(item.path) and "rules" not in item.path.name:
            item.add_marker(pytest.mark.netns)

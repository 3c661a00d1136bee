"""Fixtures for the embedded API server's tests: a server in a private namespace per test.

Each test gets its own network namespace (``aip<pid>x<n>-api``, so that ``sweep_stale``
removes it after a crash), with the server listening on the namespace's loopback and
the test's clients and kubectl inside it too; the namespace is deleted after the test,
also when the test fails.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from tests.api.support import ApiLab, api_lab


@pytest.fixture(scope="session", autouse=True)
def _require_root() -> None:
    if os.geteuid() != 0:
        pytest.fail("the API tests need root (they build network namespaces)")


@pytest.fixture
def lab() -> Iterator[ApiLab]:
    with api_lab() as made:
        yield made


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "/tests/api/" in str(item.path):
            item.add_marker(pytest.mark.netns)

"""Fixtures for the end-to-end tests: one lab (``aliasip-lab up``) per test, removed
afterwards, also when the test fails."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from tests.e2e.lab import E2ELab, e2e_lab


def _root() -> None:
    if os.geteuid() != 0:
        pytest.fail("the end-to-end tests need root (network namespaces, raw sockets)")


@pytest.fixture
def lab() -> Iterator[E2ELab]:
    """Three nodes, two operator replicas, a client."""
    _root()
    with e2e_lab(3) as made:
        yield made


@pytest.fixture
def lab5() -> Iterator[E2ELab]:
    _root()
    with e2e_lab(5) as made:
        yield made


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "/tests/e2e/" in str(item.path):
            item.add_marker(pytest.mark.netns)

"""The kustomize-built install manifests, built once per session."""

from __future__ import annotations

import pytest

from aliasip_lab.kubectl import KubectlMissing
from tests.manifests.kustomize import REPO, BuildFailed, Obj, build, key


def _build_or_fail(folder: str) -> list[Obj]:
    """A failure, never a skip: these tests are the only check that the manifests build."""
    try:
        return build(REPO / folder)
    except (KubectlMissing, BuildFailed) as exc:
        problem = str(exc)
    pytest.fail(problem, pytrace=False)


@pytest.fixture(scope="session")
def base() -> list[Obj]:
    """``kubectl kustomize manifests``: what ``kubectl apply -k manifests/`` installs."""
    return _build_or_fail("manifests")


@pytest.fixture(scope="session")
def example() -> list[Obj]:
    """``kubectl kustomize manifests/example``: the example AliasIP."""
    return _build_or_fail("manifests/example")


@pytest.fixture(scope="session")
def by_key(base: list[Obj]) -> dict[tuple[str, str], Obj]:
    """The base's objects by (kind, name)."""
    return {key(obj): obj for obj in base}

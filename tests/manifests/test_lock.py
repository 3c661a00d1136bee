"""The image's Python dependencies are locked: requirements.lock pins every runtime
dependency of pyproject.toml (and what they need) to one version with its files' sha256,
build-requirements.lock does the same for the build backend, and the Dockerfile installs
from them with --require-hashes. `./dev lock` regenerates both (pip-compile).
"""

from __future__ import annotations

import re
import shlex
import tomllib
from dataclasses import dataclass

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

from tests.manifests.kustomize import REPO
from tests.manifests.test_dockerfile import dockerfile

PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s\\;]+)")
HASH = re.compile(r"--hash=sha256:([0-9a-f]{64})\b")
# The dev extra's tools: none of them may reach the image.
DEV_ONLY = {"pytest", "hypothesis", "ruff", "mypy", "kubernetes-validate", "pip-tools"}


@dataclass(frozen=True)
class Pin:
    name: str
    version: Version
    hashes: frozenset[str]


def parse_lock(name: str) -> dict[str, Pin]:
    """Pins of a pip-compile output: ``name==version \\`` lines, each followed by its
    ``--hash=sha256:...`` continuation lines; comments and blank lines skipped."""
    pins: dict[str, Pin] = {}
    current: tuple[str, Version] | None = None
    hashes: set[str] = set()

    def close() -> None:
        if current is not None:
            pins[current[0]] = Pin(current[0], current[1], frozenset(hashes))

    for raw in (REPO / name).read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        match = PIN.match(line)
        if match:
            close()
            current, hashes = (canonicalize_name(match[1]), Version(match[2])), set()
            continue
        found = HASH.findall(line)
        assert found, f"{name}: neither a pin nor a hash: {raw!r}"
        assert current is not None, f"{name}: a hash before any pin: {raw!r}"
        hashes.update(found)
    close()
    return pins


def pyproject() -> dict[str, object]:
    with (REPO / "pyproject.toml").open("rb") as f:
        return tomllib.load(f)


def runtime_requirements() -> list[Requirement]:
    project = pyproject()["project"]
    assert isinstance(project, dict)
    return [Requirement(r) for r in project["dependencies"]]


def build_requirements() -> list[Requirement]:
    build = pyproject()["build-system"]
    assert isinstance(build, dict)
    return [Requirement(r) for r in build["requires"]]


@pytest.mark.parametrize(
    ("lock", "requirements"),
    [
        ("requirements.lock", runtime_requirements()),
        ("build-requirements.lock", build_requirements()),
    ],
    ids=["runtime", "build"],
)
def test_the_lock_pins_every_requirement_within_its_range(
    lock: str, requirements: list[Requirement]
) -> None:
    pins = parse_lock(lock)
    for requirement in requirements:
        pin = pins.get(canonicalize_name(requirement.name))
        assert pin is not None, f"{lock} lacks {requirement.name}: run ./dev lock"
        assert requirement.specifier.contains(pin.version, prereleases=True), (
            f"{lock} pins {pin.name}=={pin.version}, outside pyproject's {requirement}: "
            "run ./dev lock"
        )


@pytest.mark.parametrize("lock", ["requirements.lock", "build-requirements.lock"])
def test_every_pin_carries_its_hashes(lock: str) -> None:
    pins = parse_lock(lock)
    assert pins
    unhashed = sorted(p.name for p in pins.values() if not p.hashes)
    assert not unhashed, f"{lock}: pins without --hash: {unhashed}"


def test_the_runtime_lock_holds_no_dev_tool_and_no_build_tool() -> None:
    names = set(parse_lock("requirements.lock"))
    assert not names & DEV_ONLY
    assert not names & {"pip", "setuptools", "wheel"}


def test_the_build_lock_holds_only_the_build_backend() -> None:
    assert set(parse_lock("build-requirements.lock")) == {
        canonicalize_name(r.name) for r in build_requirements()
    }


def test_the_dockerfile_installs_the_locks_with_hashes_and_the_project_without_deps() -> None:
    runs = [i.argument for i in dockerfile() if i.keyword == "RUN" and "pip install" in i.argument]
    assert len(runs) == 2, runs
    locked, project = (shlex.split(run) for run in runs)
    assert {"--require-hashes", "--no-deps"} <= set(locked)
    for lock in ("requirements.lock", "build-requirements.lock"):
        assert locked[locked.index(lock) - 1] == "-r"
    assert {"--no-deps", "--no-index", "."} <= set(project)

"""The Dockerfile, checked statically (no docker here): one image, the entry points the
manifests run, a non-root default user that matches the operator's securityContext.
"""

from __future__ import annotations

import fnmatch
import json
import re
import shlex
import tomllib
from dataclasses import dataclass

import pytest

from tests.manifests.kustomize import REPO, Obj

# Entry points the manifests run that pyproject.toml does not declare yet, each with the
# issue that brings it. Remove a name once it is in [project.scripts] (a test says so).
# Entry points the manifests may name before pyproject.toml declares them (none left).
PLANNED: dict[str, str] = {}

IMAGE = "ghcr.io/aliasip/aliasip"


@dataclass(frozen=True)
class Instruction:
    keyword: str
    argument: str


def parse_dockerfile(text: str) -> list[Instruction]:
    """Instructions in order: comments dropped, ``\\`` continuations joined."""
    instructions: list[Instruction] = []
    pending = ""
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        keyword, _, argument = (pending + line).partition(" ")
        instructions.append(Instruction(keyword.upper(), argument.strip()))
        pending = ""
    assert not pending, "the Dockerfile ends inside a continued line"
    return instructions


def dockerfile() -> list[Instruction]:
    return parse_dockerfile((REPO / "Dockerfile").read_text())


def final_stage() -> list[Instruction]:
    instructions = dockerfile()
    starts = [i for i, ins in enumerate(instructions) if ins.keyword == "FROM"]
    return instructions[starts[-1] :]


def pyproject() -> dict[str, object]:
    with (REPO / "pyproject.toml").open("rb") as f:
        return tomllib.load(f)


def scripts() -> set[str]:
    project = pyproject()["project"]
    assert isinstance(project, dict)
    return set(project["scripts"])


def containers(base: list[Obj]) -> list[Obj]:
    found: list[Obj] = []
    for obj in base:
        if obj["kind"] in ("Deployment", "DaemonSet"):
            found += obj["spec"]["template"]["spec"]["containers"]
    return found


def _base_argument() -> str:
    """The default of ``ARG BASE`` (before the first FROM)."""
    args = [ins.argument for ins in dockerfile() if ins.keyword == "ARG"]
    defaults = [a.split("=", 1)[1] for a in args if a.startswith("BASE=")]
    assert len(defaults) == 1, args
    return defaults[0]


def test_every_stage_is_the_one_base() -> None:
    """Both stages build on ``ARG BASE`` (./dev image passes its debootstrap base), so
    the virtualenv's interpreter path and version are the runtime stage's."""
    bases = [ins.argument.split()[0] for ins in dockerfile() if ins.keyword == "FROM"]
    assert bases and all(b == "${BASE}" for b in bases), bases
    first = dockerfile()[0]  # an ARG before the first FROM is what FROM may use
    assert first.keyword == "ARG" and first.argument.startswith("BASE=")


def test_the_registry_base_is_debian_bookworm_slim_pinned_by_digest() -> None:
    """Debian 12, whose python3 is 3.11 (pyproject's requires-python), by digest: a tag
    moves, a digest does not."""
    image, _, digest = _base_argument().partition("@")
    assert image == "debian:bookworm-slim"
    assert re.fullmatch(r"sha256:[0-9a-f]{64}", digest), digest


def test_the_debootstrap_base_is_the_same_release() -> None:
    assert re.search(r"^SUITE=bookworm\b", (REPO / "dev").read_text(), re.MULTILINE)


def test_the_project_is_pip_installed() -> None:
    runs = [ins.argument for ins in dockerfile() if ins.keyword == "RUN"]
    installs = [shlex.split(run) for run in runs if "pip install" in run]
    assert [i for i in installs if "." in i] == [installs[-1]], installs
    assert "--no-deps" in installs[-1]


def test_the_final_stage_has_no_pip_and_no_lab() -> None:
    """pip and setuptools are uninstalled from the virtualenv before it is copied, the
    lab's console script deleted (.dockerignore leaves lab/ out of the context)."""
    build = " ".join(ins.argument for ins in dockerfile()[: len(dockerfile()) - len(final_stage())])
    assert "pip uninstall --yes" in build and "setuptools pip" in build
    assert "rm /opt/aliasip/bin/aliasip-lab" in build
    assert "lab" in (REPO / ".dockerignore").read_text().splitlines()
    assert not any("pip install" in ins.argument for ins in final_stage())


def test_the_default_user_is_not_root_and_is_the_operators() -> None:
    users = [ins.argument for ins in final_stage() if ins.keyword == "USER"]
    assert len(users) == 1
    uid, _, gid = users[0].partition(":")
    assert uid.isdigit() and int(uid) != 0, "numeric, so that runAsNonRoot can verify it"
    operator = (REPO / "manifests" / "operator.yaml").read_text()
    assert f"runAsUser: {uid} " in operator
    assert f"runAsGroup: {gid}" in operator


def test_the_default_command_is_the_operator() -> None:
    cmds = [json.loads(ins.argument) for ins in final_stage() if ins.keyword == "CMD"]
    assert cmds == [["aliasip-operator"]]


def test_planned_entry_points_are_not_yet_declared() -> None:
    """An entry point, once declared, is no longer "planned" (keeps PLANNED honest)."""
    assert not (PLANNED.keys() & scripts()), "declared now: remove from PLANNED"


def test_the_manifests_run_only_entry_points_of_this_image(base: list[Obj]) -> None:
    commands = {c["command"][0] for c in containers(base)}
    assert commands == {"aliasip-operator", "aliasip-agent"}
    assert commands <= scripts() | PLANNED.keys()


@pytest.mark.parametrize("name", sorted(scripts() | PLANNED.keys()))
def test_the_dockerfile_documents_each_entry_point(name: str) -> None:
    assert f"#   {name} " in (REPO / "Dockerfile").read_text()


def test_the_manifests_run_this_projects_version_of_the_image(base: list[Obj]) -> None:
    project = pyproject()["project"]
    assert isinstance(project, dict)
    images = {c["image"] for c in containers(base)}
    assert images == {f"{IMAGE}:{project['version']}"}


@pytest.mark.parametrize("ignored", [".git", ".venv", "tests", "bench"])
def test_the_build_context_leaves_out(ignored: str) -> None:
    assert ignored in (REPO / ".dockerignore").read_text().splitlines()


def _package_data_files() -> list[tuple[str, str]]:
    """(package, file) for every non-Python file inside a package of the distribution."""
    tool = pyproject()["tool"]
    assert isinstance(tool, dict)
    found: list[tuple[str, str]] = []
    for where in tool["setuptools"]["packages"]["find"]["where"]:
        root = REPO / where
        for init in sorted(root.rglob("__init__.py")):
            package_dir = init.parent
            package = ".".join(package_dir.relative_to(root).parts)
            for path in sorted(package_dir.iterdir()):
                if path.is_file() and path.suffix != ".py" and not path.name.startswith("."):
                    found.append((package, path.name))
    return found


def _declared(package: str, name: str) -> bool:
    tool = pyproject()["tool"]
    assert isinstance(tool, dict)
    declared: dict[str, list[str]] = tool["setuptools"].get("package-data", {})
    patterns = declared.get(package, []) + declared.get("*", [])
    return any(fnmatch.fnmatch(name, pattern) for pattern in patterns)


@pytest.mark.parametrize(
    ("package", "name"),
    _package_data_files(),
    ids=[f"{package}/{name}" for package, name in _package_data_files()],
)
def test_pip_install_ships_every_data_file(package: str, name: str) -> None:
    """The image is `pip install .`, not an editable install: a data file the code opens
    (e.g. aliasip_api's packaged CRD) is in the wheel only if pyproject.toml declares it
    in [tool.setuptools.package-data]; otherwise the installed package cannot find it."""
    assert _declared(package, name), (
        f"{package}/{name} is not in [tool.setuptools.package-data] of pyproject.toml, "
        f'so `pip install .` leaves it out: add {package} = ["{name}", ...]'
    )

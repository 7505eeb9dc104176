"""The lock files pin every dependency pyproject.toml declares, at a version it allows."""

import re
import tomllib
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parent.parent
PROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]


def pinned(lock: str) -> dict[str, str]:
    pins = {}
    for line in (ROOT / lock).read_text().splitlines():
        if match := re.match(r"^([A-Za-z0-9][A-Za-z0-9._-]*)(?:\[[^\]]*\])?==([^\s;\\]+)", line):
            pins[canonicalize_name(match[1])] = match[2]
    return pins


@pytest.mark.parametrize(
    ("lock", "declared"),
    [
        ("requirements.lock", PROJECT["dependencies"]),
        ("requirements-dev.lock", PROJECT["dependencies"] + PROJECT["optional-dependencies"]["dev"]),
    ],
)
def test_every_declared_dependency_is_locked_at_an_allowed_version(lock, declared):
    pins = pinned(lock)
    problems = {}
    for spec in map(Requirement, declared):
        version = pins.get(canonicalize_name(spec.name))
        if version is None or not spec.specifier.contains(version, prereleases=True):
            problems[spec.name] = version
    assert problems == {}, "run `make lock` after changing pyproject.toml"


def test_installs_come_from_the_lock():
    venv = (ROOT / "scripts" / "venv.sh").read_text()

    assert "-r requirements-dev.lock" in venv
    assert "--no-deps -e ." in venv

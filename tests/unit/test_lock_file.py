"""The lock file pins every requirement of pyproject.toml that `make install` installs: a fresh
clone must get the test runner and the extras from it, not from whatever the registry has."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def pinned() -> set[str]:
    text = (ROOT / "requirements" / "lock.txt").read_text(encoding="utf-8")
    return {canonical(m.group(1)) for m in re.finditer(r"^([A-Za-z0-9_.-]+)==", text, re.M)}


def test_every_requirement_of_the_project_is_pinned() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    wanted = list(project["dependencies"])
    for extra in ("dev", "examples"):
        wanted += project["optional-dependencies"][extra]
    names = {canonical(re.split(r"[ ;<>=!~\[]", spec, maxsplit=1)[0]) for spec in wanted}
    # uvloop is marked for non-Windows platforms only; pip-compile on Linux pins it too
    assert names - pinned() == set()

"""`scaffold resource` refusals in a baked project, through its command line.

A refused resource exits 1 with a one-line reason on stderr and leaves every file as it was.
That a scaffolded resource lints, migrates and passes its own tests is checked in the smallest
tier B bake (`test_baked_suites.py`), which scaffolds two resources before its checks run; the
scaffold's unit tests run in every baked suite. These need no services and no install of their
own: the bake's source runs on the shared lint virtualenv.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tests.support import Bake, child_environment

REFUSALS = (
    ("order", "title:str", "SQL reserved word"),
    ("widget", "size:huge", "unknown type 'huge'"),
    ("users", "title:str", "existing module"),
    ("widget", "id:uuid", "every resource uses"),
)


def source_files(project: Path) -> dict[str, bytes]:
    return {
        path.relative_to(project).as_posix(): path.read_bytes()
        for path in sorted(project.rglob("*"))
        if path.is_file() and "__pycache__" not in path.parts
    }


def scaffold(
    project: Path, python: Path, name: str, fields: str
) -> subprocess.CompletedProcess[str]:
    command = [str(python), "-m", project.name, "scaffold", "resource", name, "--fields", fields]
    return subprocess.run(
        command,
        cwd=project,
        env=child_environment(PYTHONPATH=str(project / "src")),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.mark.parametrize(
    ("combination", "refusals"),
    [
        pytest.param({}, (*REFUSALS, ("item", "title:str", "exists already")), id="defaults"),
        pytest.param({"use_celery": "n", "include_example_domain": "n"}, REFUSALS, id="minimal"),
    ],
)
def test_a_refused_resource_exits_1_with_one_line_and_writes_nothing(
    bake: Bake,
    lint_venv: Path,
    combination: dict[str, str],
    refusals: tuple[tuple[str, str, str], ...],
) -> None:
    project = bake(**combination)
    before = source_files(project)

    for name, fields, reason in refusals:
        result = scaffold(project, lint_venv / "bin" / "python", name, fields)

        assert result.returncode == 1, result.stdout + result.stderr
        assert result.stdout == ""
        (line,) = result.stderr.splitlines()
        assert reason in line
        assert "nothing was written" in line
    assert source_files(project) == before

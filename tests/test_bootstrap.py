"""The `uv` targets of the template's and the generated Makefile, where uv is not installed.

Run as a user would: inside an activated virtualenv of their own, with no uv anywhere on PATH.
uv must land in a virtualenv of the Makefile's own, be called by its path, and leave the user's
virtualenv untouched.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support import TEMPLATE_DIR, Bake, child_environment, run

INSTALLING = "uv not found: installing it with pip into"


@pytest.fixture
def user_venv_env(tmp_path: Path) -> dict[str, str]:
    """The environment of a shell with its own virtualenv activated, and no uv on PATH."""
    venv = tmp_path / "user-venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, capture_output=True)
    path = os.pathsep.join([str(venv / "bin"), "/usr/bin", "/bin"])
    assert shutil.which("uv", path=path) is None
    return child_environment(PATH=path, VIRTUAL_ENV=str(venv))


def assert_untouched(env: dict[str, str]) -> None:
    shown = subprocess.run(
        [str(Path(env["VIRTUAL_ENV"]) / "bin" / "python"), "-m", "pip", "show", "uv"],
        capture_output=True,
        check=False,
    )
    assert shown.returncode != 0, "uv was installed into the user's virtualenv"


def test_generated_makefile_installs_uv_beside_the_project(
    bake: Bake, user_venv_env: dict[str, str]
) -> None:
    project = bake()
    uv = project / ".tools" / "uv" / "bin" / "uv"

    first = run(["make", "uv"], cwd=project, env=user_venv_env)
    second = run(["make", "uv"], cwd=project, env=user_venv_env)
    planned = run(["make", "--dry-run", "install"], cwd=project, env=user_venv_env)

    assert f"{INSTALLING} {project}/.tools/uv" in first
    assert INSTALLING not in second
    assert "uv" in run([str(uv), "--version"], cwd=project, env=user_venv_env)
    assert f"{uv} sync" in planned.splitlines()
    assert_untouched(user_venv_env)
    assert ".tools/" in (project / ".gitignore").read_text().splitlines()


def test_template_makefile_installs_uv_into_its_tools(
    tmp_path: Path, user_venv_env: dict[str, str]
) -> None:
    tools = tmp_path / "tools"

    installed = run(["make", "uv", f"TOOLS={tools}"], cwd=TEMPLATE_DIR, env=user_venv_env)
    planned = run(
        ["make", "--dry-run", "test", f"TOOLS={tools}"], cwd=TEMPLATE_DIR, env=user_venv_env
    )

    assert f"{INSTALLING} {tools}/uv" in installed
    assert f"{tools}/uv/bin/uv run pytest" in planned
    assert_untouched(user_venv_env)

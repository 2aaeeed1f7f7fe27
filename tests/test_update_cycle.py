"""Template updates with cruft: a user's changes survive, the template's arrive, conflicts show.

The whole cycle runs on real git repositories: the template is copied into a repository of its
own (commit A), a project is baked from it and committed, the user edits it, the template moves
on (commit B), and `cruft update` brings the project to B.
"""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import pytest
from cookiecutter.main import cookiecutter

from tests.support import TEMPLATE_DIR, child_environment, run

# What a checkout holds besides the template: never part of what users bake.
NOT_TEMPLATE = shutil.ignore_patterns(
    ".git", ".venv", ".demo", ".tools", "__pycache__", ".*_cache", "*.pyc"
)

GIT_IDENTITY = {
    "GIT_AUTHOR_NAME": "Template Tests",
    "GIT_AUTHOR_EMAIL": "tests@example.com",
    "GIT_COMMITTER_NAME": "Template Tests",
    "GIT_COMMITTER_EMAIL": "tests@example.com",
}

USER_TARGET = "\n# Added by the project's team.\nseed:\n\t@echo seeding\n"
TEMPLATE_TARGET = "hello:\n\t@echo hello from the template\n\n"
TEMPLATE_IGNORE = "# Added by the template in a later commit.\nnotes/\n"
BAKED_TITLE = "# My Service\n"
USER_TITLE = "# Order desk (internal)\n"
TEMPLATE_TITLE_BEFORE = "# {{ cookiecutter.project_name }}\n"
TEMPLATE_TITLE = "# {{ cookiecutter.project_name }}, a FastAPI service\n"


def git(folder: Path, *args: str) -> str:
    return run(["git", *args], cwd=folder, env=child_environment(**GIT_IDENTITY))


def commit_all(folder: Path, message: str) -> str:
    git(folder, "add", "--all")
    git(folder, "commit", "--quiet", "--no-verify", "--message", message)
    return git(folder, "rev-parse", "HEAD").strip()


def insert_before(path: Path, marker: str, text: str) -> None:
    content = path.read_text(encoding="utf-8")
    assert marker in content, f"{marker!r} not in {path}"
    path.write_text(content.replace(marker, text + marker, 1), encoding="utf-8")


def replace_line(path: Path, old: str, new: str) -> None:
    content = path.read_text(encoding="utf-8")
    assert content.count(old) == 1, f"{old!r} is not once in {path}"
    path.write_text(content.replace(old, new), encoding="utf-8")


@pytest.mark.slow
def test_cruft_update_keeps_user_changes_and_reports_conflicts(
    tmp_path: Path, cookiecutter_config: Path
) -> None:
    template = tmp_path / "template"
    shutil.copytree(TEMPLATE_DIR, template, ignore=NOT_TEMPLATE)
    git(template, "init", "--quiet", "--initial-branch=main")
    commit_a = commit_all(template, "A")

    project = Path(
        cookiecutter(
            str(template),
            no_input=True,
            output_dir=str(tmp_path / "out"),
            config_file=str(cookiecutter_config),
        )
    )
    state = json.loads((project / ".cruft.json").read_text())
    assert state["template"] == str(template.resolve())
    assert state["commit"] == commit_a
    assert ".env" in state["skip"]
    env_before = (project / ".env").read_text()

    git(project, "init", "--quiet", "--initial-branch=main")
    commit_all(project, "Baked from the template")
    # The user's own edits: a Makefile target of theirs and a new README title.
    makefile = project / "Makefile"
    makefile.write_text(makefile.read_text() + USER_TARGET)
    replace_line(project / "README.md", BAKED_TITLE, USER_TITLE)
    commit_all(project, "Our changes")

    # The template moves on: a new Makefile target, an edit to a file the user left alone, and
    # a README title that clashes with the user's.
    generated = template / "{{cookiecutter.project_slug}}"
    insert_before(generated / "Makefile", "help:", TEMPLATE_TARGET)
    dockerignore = generated / ".dockerignore"
    dockerignore.write_text(dockerignore.read_text() + TEMPLATE_IGNORE)
    replace_line(generated / "README.md", TEMPLATE_TITLE_BEFORE, TEMPLATE_TITLE)
    commit_b = commit_all(template, "B")

    # Exit status 0 even when a hunk conflicts: cruft reports it and leaves it to the user.
    output = run(
        [sys.executable, "-m", "cruft", "update", "--skip-apply-ask", "--allow-untracked-files"],
        cwd=project,
        env=child_environment(**GIT_IDENTITY),
        timeout=300,
    )
    print(output)  # noqa: T201 (the update's own report, in the test's output)
    assert "conflict" in output.lower()

    # The template's changes arrived ...
    merged_makefile = makefile.read_text()
    assert TEMPLATE_TARGET in merged_makefile
    assert (project / ".dockerignore").read_text().endswith(TEMPLATE_IGNORE)
    # ... the user's change survived beside them ...
    assert merged_makefile.endswith(USER_TARGET)
    # ... and the clash is in the README for the user to resolve, both sides kept.
    readme = (project / "README.md").read_text()
    rejected = list(project.rglob("*.rej"))
    if rejected:
        assert USER_TITLE in readme
        assert "a FastAPI service" in rejected[0].read_text()
    else:
        assert "<<<<<<<" in readme
        assert USER_TITLE.strip() in readme
        assert "# My Service, a FastAPI service\n" in readme
    # The files the user owns were not touched; the project now records commit B.
    assert (project / ".env").read_text() == env_before
    assert json.loads((project / ".cruft.json").read_text())["commit"] == commit_b

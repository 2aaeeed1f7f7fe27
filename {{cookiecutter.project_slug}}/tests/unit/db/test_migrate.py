"""New revisions continue the numbered sequence and come out formatted (no database needed)."""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from alembic.script import ScriptDirectory

from {{ cookiecutter.project_slug }}.db import migrate

PROJECT = Path(__file__).resolve().parents[3]
MIGRATIONS = PROJECT / "src" / "{{ cookiecutter.project_slug }}" / "db" / "migrations"
RUFF = str(Path(sys.executable).with_name("ruff"))


@pytest.fixture
def scripts() -> Iterator[Path]:
    """A copy of the migrations where the real ones live (`src/<package>/db/migrations`), so
    the project's ruff settings apply to it, removed afterwards; the real folder is untouched."""
    with tempfile.TemporaryDirectory(dir=PROJECT / "src", prefix="revision_test_") as package:
        copy = Path(package) / "db" / "migrations"
        shutil.copytree(MIGRATIONS, copy, ignore=shutil.ignore_patterns("__pycache__"))
        yield copy


def shipped_head() -> str:
    (head,) = ScriptDirectory(str(MIGRATIONS)).get_heads()
    return head


class TestWriteRevision:
    def test_is_numbered_after_the_shipped_revisions(self, scripts: Path) -> None:
        config = migrate.alembic_config(script_location=str(scripts))

        migrate.write_revision(config, "Add a column, with care!", autogenerate=False)

        expected = f"{int(shipped_head()[:4]) + 1:04d}_add_a_column_with_care"
        (written,) = (scripts / "versions").glob(f"{expected[:4]}_*.py")
        assert written.stem == expected
        source = written.read_text()
        assert f'revision: str = "{expected}"' in source
        assert f'down_revision: str | Sequence[str] | None = "{shipped_head()}"' in source

    def test_passes_the_linters_as_written(self, scripts: Path) -> None:
        config = migrate.alembic_config(script_location=str(scripts))

        migrate.write_revision(config, "add x", autogenerate=False)

        (written,) = (scripts / "versions").glob("*_add_x.py")
        for check in (["check", "--no-cache"], ["format", "--check", "--no-cache"]):
            result = subprocess.run(
                [RUFF, *check, str(written)], capture_output=True, text=True, check=False
            )
            assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize(
    ("message", "suffix"),
    [("Add x", "add_x"), ("  ", "revision"), ("x" * 60, "x" * migrate.SLUG_LENGTH)],
)
def test_next_revision_id_slugs_the_message(message: str, suffix: str) -> None:
    script = ScriptDirectory(str(MIGRATIONS))

    revision = migrate.next_revision_id(script, message)

    assert revision == f"{int(shipped_head()[:4]) + 1:04d}_{suffix}"

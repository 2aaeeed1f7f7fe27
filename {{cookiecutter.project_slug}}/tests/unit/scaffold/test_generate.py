"""`scaffold resource`: refusals leave the project untouched; a resource is written once.

Each test works on a copy of this project's source and tests, never on the project itself.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from {{ cookiecutter.project_slug }}.scaffold import ScaffoldError, scaffold_resource
from {{ cookiecutter.project_slug }}.scaffold.generate import index_name, indexes
from {{ cookiecutter.project_slug }}.scaffold.spec import FieldSpec, ResourceSpec, parse_fields

PROJECT = Path(__file__).resolve().parents[3]


@pytest.fixture
def project(tmp_path: Path) -> Path:
    copy = tmp_path / "project"
    ignore = shutil.ignore_patterns("__pycache__", ".*_cache")
    for folder in ("src", "tests"):
        shutil.copytree(PROJECT / folder, copy / folder, ignore=ignore)
    shutil.copy(PROJECT / "pyproject.toml", copy / "pyproject.toml")
    return copy


def snapshot(root: Path) -> dict[str, bytes]:
    return {
        path.relative_to(root).as_posix(): path.read_bytes()
        for path in sorted(root.rglob("*"))
        if path.is_file() and "__pycache__" not in path.parts
    }


class TestFields:
    def test_parses_types_and_optional_marks(self) -> None:
        assert parse_fields("title:str, price : decimal , due:date?") == (
            FieldSpec("title", "str", optional=False),
            FieldSpec("price", "decimal", optional=False),
            FieldSpec("due", "date", optional=True),
        )


class TestSorting:
    def test_sorts_by_timestamps_and_required_ordered_fields(self) -> None:
        fields = parse_fields("title:str, body:text, done:bool, price:decimal, due:date?")
        spec = ResourceSpec("task", "tasks", fields)

        assert spec.sort_fields == ("created_at", "updated_at", "title", "price")
        assert spec.search_field == fields[0]
        # One index per sort field for an owner's rows and one for everyone's.
        assert len(indexes(spec)) == 2 * len(spec.sort_fields)

    def test_long_index_names_are_shortened_within_postgres_limit(self) -> None:
        columns = ["owner_id", "a_rather_long_field_name_for_sorting", "id"]
        # Differs from `columns` only past the point where the name is cut.
        other = ["owner_id", "a_rather_long_field_name_for_sortin", "id"]

        name = index_name("x" * 30, columns)

        assert len(name) <= 63
        assert name == index_name("x" * 30, columns)
        assert name != index_name("x" * 30, other)


class TestRefusals:
    @pytest.mark.parametrize(
        ("name", "fields", "reason"),
        [
            ("class", "title:str", "Python keyword"),
            ("order", "title:str", "SQL reserved word"),
            ("group", "title:str", "SQL reserved word"),
            ("user", "title:str", "SQL reserved word"),
            ("json", "title:str", "standard-library module"),
            ("auth", "title:str", "existing module"),
            ("users", "title:str", "existing module"),
            ("base", "title:str", "generated code"),
            ("event", "title:str", "generated code"),
            ("change", "title:str", "generated code"),
            ("cursor", "title:str", "Container already has a member"),
            ("Product", "title:str", "lower_snake_case"),
            ("product", "price:money", "unknown type 'money'"),
            ("product", "title", "needs a type"),
            ("product", "id:uuid", "every resource uses"),
            ("product", "title:str, title:text", "given twice"),
            ("product", "from:date", "Python keyword"),
            ("product", "", "at least one field"),
        ],
    )
    def test_refuses_with_a_reason_and_writes_nothing(
        self, project: Path, name: str, fields: str, reason: str
    ) -> None:
        before = snapshot(project)

        with pytest.raises(ScaffoldError, match=reason) as refused:
            scaffold_resource(name, fields, project_dir=project)

        assert "\n" not in str(refused.value)
        assert snapshot(project) == before

    def test_command_line_refusal_is_one_line_and_exits_non_zero(self, project: Path) -> None:
        before = snapshot(project)

        command = [
            sys.executable,
            "-m",
            "{{ cookiecutter.project_slug }}",
            "scaffold",
            "resource",
            "order",
            "--project-dir",
            str(project),
        ]
        result = subprocess.run(
            command,
            capture_output=True,
            text=True,
            check=False,
        )

        assert result.returncode == 1
        assert result.stdout == ""
        (line,) = result.stderr.splitlines()
        assert "SQL reserved word" in line
        assert "nothing was written" in line
        assert snapshot(project) == before


class TestWrite:
    def test_writes_every_layer_once_then_refuses(self, project: Path) -> None:
        plan = scaffold_resource("gadget", "label:str, weight:decimal?", project_dir=project)
        package = project / "src" / "{{ cookiecutter.project_slug }}"

        created = {path.relative_to(project).as_posix() for path in plan.created}
        assert {
            "src/{{ cookiecutter.project_slug }}/models/gadget.py",
            "src/{{ cookiecutter.project_slug }}/schemas/gadget.py",
            "src/{{ cookiecutter.project_slug }}/repositories/gadget.py",
            "src/{{ cookiecutter.project_slug }}/services/gadget.py",
            "src/{{ cookiecutter.project_slug }}/api/v1/gadgets.py",
            "tests/integration/api/v1/test_gadgets.py",
            "tests/integration/services/test_gadget.py",
            "tests/integration/repositories/test_gadget.py",
        } <= created
        (migration,) = [path for path in created if "/versions/" in path]
        assert migration.endswith("_gadgets.py")
        assert "def gadgets(self, uow: UnitOfWork)" in (package / "container.py").read_text()
        assert "GadgetServiceDep = " in (package / "api" / "deps.py").read_text()
        assert "include_router(gadgets_router)" in (package / "api/v1/__init__.py").read_text()
        assert 'GADGETS_READ = "gadgets:read"' in (package / "core/permissions.py").read_text()

        before = snapshot(project)
        with pytest.raises(ScaffoldError, match="exists already"):
            scaffold_resource("gadget", "label:str", project_dir=project)
        assert snapshot(project) == before

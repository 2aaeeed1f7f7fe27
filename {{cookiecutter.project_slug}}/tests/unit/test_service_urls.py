"""How the suite finds its services and names what it creates in them (tests/services.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.processes import database_name
from tests.services import HOW_TO_PROVIDE, ServicesUnavailableError, namespace, resolve

README = Path(__file__).resolve().parents[2] / "README.md"


def test_a_missing_service_gives_the_readme_instruction(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # Nothing listens on port 1, and no `docker` on PATH: testcontainers cannot step in.
    monkeypatch.setenv("TEST_DATABASE_URL", "postgresql://postgres@127.0.0.1:1/test")
    monkeypatch.setenv("PATH", str(tmp_path))

    with pytest.raises(ServicesUnavailableError) as raised:
        resolve(("TEST_DATABASE_URL",))

    message = str(raised.value)
    assert message.startswith(
        "cannot reach TEST_DATABASE_URL=postgresql://postgres@127.0.0.1:1/test"
    )
    assert message.endswith(HOW_TO_PROVIDE)
    assert " ".join(HOW_TO_PROVIDE.split()) in " ".join(README.read_text().split())


class TestNamespace:
    def test_test_namespace_moves_every_name(self, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setenv("TEST_NAMESPACE", "CI Job-42")

        assert namespace() == "ci_job_42"
        assert database_name().startswith("{{ cookiecutter.project_slug }}_ci_job_42_")

    def test_is_short_enough_for_a_database_name(self, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setenv("TEST_NAMESPACE", "n" * 40)

        assert len(database_name()) <= 63

    def test_without_the_variable_a_process_keeps_one(
        self, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.delenv("TEST_NAMESPACE", raising=False)

        assert namespace() == namespace()
        assert namespace().startswith("t")
        assert len(namespace()) == 8

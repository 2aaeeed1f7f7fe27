"""The test helpers that turn a baked project's output into a readable failure, and read READMEs.

No service and no bake needed: part of `make test-unit`.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.support import (
    START_SERVICES,
    TEMPLATE_DIR,
    child_environment,
    failure_summary,
    readme_problems,
    readme_references,
    run,
    services_unavailable_message,
)

FAILING_SUITE = """
def test_first():
    assert "first" == "expected"


def test_passes():
    pass


def test_second():
    for line in range(200):
        print(f"noise {line}")
    assert 1 == 2
"""


class TestFailureReport:
    def test_names_failing_tests_and_shows_the_first_assertion(self, tmp_path: Path) -> None:
        (tmp_path / "test_suite.py").write_text(FAILING_SUITE)
        command = [
            sys.executable,
            "-m",
            "pytest",
            "-ra",
            "-p",
            "no:cacheprovider",
            "-p",
            "no:xdist",
        ]

        with pytest.raises(AssertionError) as raised:
            run(command, cwd=tmp_path)

        report = str(raised.value)
        assert "FAILED test_suite.py::test_first" in report
        assert "FAILED test_suite.py::test_second" in report
        # Far from the end of the output (200 captured lines follow), yet shown.
        assert '>       assert "first" == "expected"' in report
        assert "AssertionError: assert 'first' == 'expected'" in report
        assert "test_suite.py:3: AssertionError" in report

    def test_keeps_a_multi_line_message_whole(self) -> None:
        output = "\n".join(
            [
                ">       assert ready, log",
                "E       AssertionError: server did not come up:",
                "E",
                "E         address already in use",
                "",
                "tests/processes.py:208: AssertionError",
                "FAILED tests/e2e/test_server.py::test_serves - AssertionError",
            ]
        )

        assert failure_summary(output).endswith(
            "E         address already in use\n\ntests/processes.py:208: AssertionError"
        )

    def test_without_pytest_output_there_is_no_summary(self) -> None:
        assert failure_summary("make: *** [Makefile:3: lint] Error 1\n") == ""


README = """\
# Service

```bash
make dev    # serve
```

## Layout

```
src/pkg/
  api/            routers
  tasks/          Celery
  models.py       tables
tests/unit  tests/e2e
```

| `make worker` / `make lint` | ... |

Add `src/pkg/<resource>.py` and `tests/**/test_x.py`; the data lives in `var/`. See `deploy/x`.
"""


class TestReadmeReferences:
    def test_reads_targets_and_paths_from_code(self) -> None:
        references = readme_references(README)

        assert references.make_targets == {"dev", "worker", "lint"}
        assert references.paths == {
            "src/pkg/",
            "src/pkg/api/",
            "src/pkg/tasks/",
            "src/pkg/models.py",
            "tests/unit",
            "tests/e2e",
            "deploy/x",
        }

    def test_reports_what_the_project_lacks(self, tmp_path: Path) -> None:
        (tmp_path / "README.md").write_text(README)
        (tmp_path / "Makefile").write_text("dev: install\n\tuv run x\n\nlint:\n\tuv run y\n")
        for folder in ("src/pkg/api", "tests/unit", "tests/e2e", "deploy/x"):
            (tmp_path / folder).mkdir(parents=True)
        (tmp_path / "src/pkg/models.py").write_text("")

        assert readme_problems(tmp_path) == ["make worker", "src/pkg/tasks/"]


def test_missing_services_message_gives_the_readme_command() -> None:
    message = services_unavailable_message({"TEST_REDIS_URL": "redis://127.0.0.1:1"})

    assert "TEST_REDIS_URL=redis://127.0.0.1:1" in message
    assert f"`{START_SERVICES}`" in message
    assert f"`{START_SERVICES}`" in (TEMPLATE_DIR / "README.md").read_text()


def test_a_test_that_needs_a_missing_service_fails_at_once_with_the_command(
    tmp_path: Path,
) -> None:
    """Only tests using `services` look for them; without them and Docker, they fail at once."""
    nothing_listens = {
        "TEST_DATABASE_URL": "postgresql://postgres@127.0.0.1:1/test",
        "TEST_REDIS_URL": "redis://127.0.0.1:1",
        "TEST_AMQP_URL": "amqp://guest:guest@127.0.0.1:1//",
    }
    # The interpreter's folder only: no `docker`, so testcontainers cannot step in.
    env = child_environment(PATH=str(Path(sys.executable).parent), **nothing_listens)
    command = [
        sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "--numprocesses=0",
        f"--basetemp={tmp_path / 'run'}", "tests/test_baked_suites.py", "-k", "minimal",
    ]  # fmt: skip

    finished = subprocess.run(
        command, cwd=TEMPLATE_DIR, env=env, capture_output=True, text=True, check=False
    )

    assert finished.returncode == pytest.ExitCode.TESTS_FAILED, finished.stdout
    assert "1 error" in finished.stdout
    assert "TEST_DATABASE_URL=postgresql://postgres@127.0.0.1:1/test" in finished.stdout
    assert f"`{START_SERVICES}`" in finished.stdout

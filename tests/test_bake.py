"""Tier A: bake every value of every option, check the output renders and lints cleanly.

Modelled on cookiecutter-django's tests/test_cookiecutter_generation.py: one key changed from the
defaults at a time, plus the pairs of options that interact, plus bad answers the pre-generation
hook must refuse. Linters run from one shared virtualenv (see `lint_venv`).
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import tomllib
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from cookiecutter.exceptions import FailedHookException
from cookiecutter.main import cookiecutter

from tests.support import TEMPLATE_DIR, Bake, child_environment, readme_problems, run
from tests.test_hooks import load_hook

DEFAULTS: dict[str, str] = {
    key: value[0] if isinstance(value, list) else value
    for key, value in json.loads((TEMPLATE_DIR / "cookiecutter.json").read_text()).items()
    if not key.startswith("_")
}

OPTIONS: dict[str, list[str]] = {
    key: value
    for key, value in json.loads((TEMPLATE_DIR / "cookiecutter.json").read_text()).items()
    if isinstance(value, list)
}


UNICODE_NAME = "Café Ünïcode & Co's <Shop>"


def _combinations() -> list[dict[str, str]]:
    combinations: list[dict[str, str]] = [{}]
    # Every non-default value on its own (the first choice is the default).
    combinations += [{key: value} for key, values in OPTIONS.items() for value in values[1:]]
    # Celery's broker depends on Redis: the one pair that changes wiring.
    combinations += [{"use_celery": "n", "use_redis": "n"}]
    # A name whose derived slug differs from the default, and an explicit slug.
    combinations += [
        {"project_name": "Acme Billing-API"},
        # Non-ASCII letters, punctuation and markup: a transliterated slug, text that stays text.
        {"project_name": UNICODE_NAME},
        {"project_name": "Order Desk", "project_slug": "orders"},
        # The longest slug the pre-generation hook accepts must still format within 100 columns.
        {"project_slug": "s" * 32},
    ]
    return combinations


SUPPORTED_COMBINATIONS = _combinations()

UNSUPPORTED_ANSWERS = [
    {"project_slug": "class"},
    {"project_slug": "import"},
    {"project_slug": "redis"},
    {"project_slug": "celery"},
    {"project_slug": "test"},
    {"project_slug": "My-Service"},
    {"project_slug": "s" * 33},
    {"author_email": "x"},
]


def _id(combination: dict[str, str]) -> str:
    return "-".join(f"{key}:{value}" for key, value in combination.items()) or "defaults"


@pytest.fixture(scope="module")
def post_gen() -> ModuleType:
    return load_hook("post_gen_project")


# Cookiecutter's last line after a refused answer.
REFUSAL_FOOTER = "Hook script failed (exit status: 1)"

# A cookiecutter variable or a Jinja statement left in the output.
UNRENDERED = re.compile(r"\{\{\s*cookiecutter\.|\{%")
# Any other `{{`: a leftover too, except where the file format has its own templating
# (GitHub Actions `${{ }}`, Grafana legends `{{handler}}`).
BRACES = re.compile(r"\{\{")
OWN_TEMPLATING = frozenset({".json", ".yml", ".yaml"})
SKIPPED_DIRS = frozenset({".venv", ".git", "__pycache__", ".mypy_cache", ".ruff_cache"})


def _text_files(root: Path) -> list[Path]:
    files = []
    for path in root.rglob("*"):
        if path.is_file() and not SKIPPED_DIRS.intersection(path.relative_to(root).parts):
            try:
                path.read_text(encoding="utf-8")
            except UnicodeDecodeError:
                continue  # binary
            files.append(path)
    return files


@pytest.mark.parametrize("combination", SUPPORTED_COMBINATIONS, ids=_id)
def test_renders_completely(bake: Bake, combination: dict[str, str]) -> None:
    project = bake(**combination)

    assert project.is_dir()
    leftovers = [
        f"{path.relative_to(project)}:{number}: {line.strip()}"
        for path in _text_files(project)
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
        if UNRENDERED.search(line) or (path.suffix not in OWN_TEMPLATING and BRACES.search(line))
    ]
    assert leftovers == []


@pytest.mark.parametrize("combination", SUPPORTED_COMBINATIONS, ids=_id)
def test_readme_describes_this_bake(
    bake: Bake, post_gen: ModuleType, combination: dict[str, str]
) -> None:
    """The README names only `make` targets and paths this bake has, and its own services."""
    project = bake(**combination)
    answers = {**DEFAULTS, **combination}

    assert readme_problems(project) == []
    readme = (project / "README.md").read_text()
    assert f"on real {post_gen.test_services(answers)}" in readme
    assert ("`make worker`" in readme) == (answers["use_celery"] == "y")


@pytest.mark.parametrize("combination", SUPPORTED_COMBINATIONS, ids=_id)
def test_lint_passes(
    bake: Bake, lint_venv: Path, mypy_cache: Path, combination: dict[str, str]
) -> None:
    project = bake(**combination)
    tools = lint_venv / "bin"
    env = child_environment(MYPY_CACHE_DIR=str(mypy_cache))

    run([str(tools / "ruff"), "check", "--no-cache", "."], cwd=project, env=env)
    run([str(tools / "ruff"), "format", "--check", "--no-cache", "."], cwd=project, env=env)
    # The project's [tool.mypy] names what to check; --strict is repeated to make it a contract.
    run([str(tools / "mypy"), "--strict"], cwd=project, env=env)


def _dependencies(project: Path) -> set[str]:
    pyproject: dict[str, Any] = tomllib.loads((project / "pyproject.toml").read_text())
    requirements = pyproject["project"]["dependencies"] + pyproject["dependency-groups"]["dev"]
    return {re.split(r"[\[<>=!~;\s]", requirement, maxsplit=1)[0] for requirement in requirements}


class TestOptionEffects:
    def test_defaults_enable_everything(self, bake: Bake) -> None:
        project = bake()
        package = project / "src" / project.name

        assert (package / "tasks").is_dir()
        assert (package / "api" / "v1" / "items.py").is_file()
        assert (project / ".github").is_dir()
        assert not (project / ".gitlab-ci.yml").exists()
        assert "Permission is hereby granted" in (project / "LICENSE").read_text()
        assert {"celery", "redis"} <= _dependencies(project)

    def test_without_celery(self, bake: Bake) -> None:
        project = bake(use_celery="n")

        assert not (project / "src" / project.name / "tasks").exists()
        assert not list(project.glob("tests/**/tasks"))
        assert "celery" not in _dependencies(project)
        assert "celery-types" not in _dependencies(project)

    def test_without_redis(self, bake: Bake) -> None:
        project = bake(use_redis="n")

        assert "redis" not in _dependencies(project)
        assert "celery" in _dependencies(project)

    def test_tracing_is_left_out_by_default(self, bake: Bake) -> None:
        project = bake()

        assert not [path for path in project.rglob("*telemetry*") if path.is_file()]
        assert not [name for name in _dependencies(project) if name.startswith("opentelemetry")]
        assert "OTEL_" not in (project / "docker-compose.yml").read_text()

    def test_with_tracing(self, bake: Bake) -> None:
        project = bake(use_opentelemetry="y")
        package = project / "src" / project.name

        assert (package / "core" / "telemetry.py").is_file()
        assert (project / "tests" / "integration" / "test_items_telemetry.py").is_file()
        assert {
            "opentelemetry-sdk",
            "opentelemetry-exporter-otlp-proto-http",
            "opentelemetry-instrumentation-celery",
            "opentelemetry-instrumentation-redis",
        } <= _dependencies(project)
        assert "jaeger:" in (project / "docker-compose.yml").read_text()

    def test_tracing_without_celery_redis_or_example(self, bake: Bake) -> None:
        project = bake(
            use_opentelemetry="y", use_celery="n", use_redis="n", include_example_domain="n"
        )
        telemetry = (project / "src" / project.name / "core" / "telemetry.py").read_text()

        assert "CeleryInstrumentor" not in telemetry
        assert "RedisInstrumentor" not in telemetry
        assert not (project / "tests" / "integration" / "test_items_telemetry.py").exists()
        assert "opentelemetry-instrumentation-celery" not in _dependencies(project)
        assert "opentelemetry-instrumentation-redis" not in _dependencies(project)

    def test_without_example_domain(self, bake: Bake) -> None:
        project = bake(include_example_domain="n")

        assert not [path for path in project.rglob("*item*") if "__pycache__" not in path.parts]

    @pytest.mark.parametrize(
        ("provider", "kept", "removed"),
        [
            ("gitlab", [".gitlab-ci.yml"], [".github"]),
            ("none", [], [".github", ".gitlab-ci.yml"]),
        ],
    )
    def test_ci_provider(
        self, bake: Bake, provider: str, kept: list[str], removed: list[str]
    ) -> None:
        project = bake(ci_provider=provider)

        assert all((project / name).exists() for name in kept)
        assert not any((project / name).exists() for name in removed)

    def test_apache_license(self, bake: Bake) -> None:
        project = bake(open_source_license="Apache-2.0")

        assert "Apache License" in (project / "LICENSE").read_text()

    def test_not_open_source(self, bake: Bake) -> None:
        project = bake(open_source_license="Not open source")

        assert not (project / "LICENSE").exists()

    def test_derived_slug(self, bake: Bake) -> None:
        project = bake(project_name="Acme Billing-API")

        assert project.name == "acme_billing_api"
        assert (project / "src" / "acme_billing_api" / "__init__.py").is_file()

    def test_derived_slug_is_ascii_without_punctuation(self, bake: Bake) -> None:
        project = bake(project_name=UNICODE_NAME)

        assert project.name == "cafe_unicode_cos_shop"
        config = (project / "src" / project.name / "core" / "config.py").read_text()
        assert f'project_name: str = "{UNICODE_NAME}"' in config


class TestGeneratedFiles:
    def test_env_has_fresh_secrets(self, bake: Bake) -> None:
        first, second = bake() / ".env", bake() / ".env"

        assert "change-me" not in first.read_text().lower()
        assert first.read_text() != second.read_text()

    def test_shell_scripts_use_lf(self, bake: Bake) -> None:
        project = bake()

        assert [path for path in project.rglob("*.sh") if b"\r\n" in path.read_bytes()] == []


@pytest.mark.parametrize("answers", UNSUPPORTED_ANSWERS, ids=_id)
def test_invalid_answers_stop_generation(
    tmp_path: Path,
    cookiecutter_config: Path,
    capfd: pytest.CaptureFixture[str],
    answers: dict[str, str],
) -> None:
    with pytest.raises(FailedHookException):
        cookiecutter(
            str(TEMPLATE_DIR),
            no_input=True,
            extra_context=answers,
            output_dir=str(tmp_path),
            config_file=str(cookiecutter_config),
        )

    assert list(tmp_path.iterdir()) == []
    (reason,) = [line for line in capfd.readouterr().err.splitlines() if line.startswith("error:")]
    assert next(iter(answers.values())) in reason


class TestOptionLogicIsConfined:
    """Option-dependent Python lives in the composition root and in files the hook prunes."""

    SOURCE = (
        TEMPLATE_DIR / "{{cookiecutter.project_slug}}" / "src" / "{{cookiecutter.project_slug}}"
    )
    # Layers whose code must read the same in every bake.
    PLAIN_LAYERS = ("api", "services", "repositories", "models", "schemas", "middleware")
    MAX_JINJA_LINES = 15

    def _jinja_lines(self, root: Path) -> list[str]:
        return [
            f"{path.relative_to(self.SOURCE)}:{number}"
            for path in sorted(root.rglob("*.py"))
            for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
            if "{%" in line
        ]

    def test_few_jinja_statements_in_the_package(self) -> None:
        lines = self._jinja_lines(self.SOURCE)
        assert len(lines) <= self.MAX_JINJA_LINES, lines

    @pytest.mark.parametrize("layer", PLAIN_LAYERS)
    def test_no_jinja_statements_in_layer(self, layer: str) -> None:
        assert self._jinja_lines(self.SOURCE / layer) == []

    def test_every_registry_line_the_hook_removes_is_in_the_default_bake(self, bake: Bake) -> None:
        post_gen = load_hook("post_gen_project")
        # Every option on: the defaults leave the optional tracing out.
        project = bake(use_opentelemetry="y")
        slug = project.name
        for feature in post_gen.MANIFEST:
            for relative, line in feature.lines:
                text = (project / relative.format(slug=slug)).read_text(encoding="utf-8")
                stripped = [candidate.strip() for candidate in text.splitlines()]
                assert stripped.count(line.format(slug=slug)) == 1, (relative, line)


def test_refusal_is_one_line_on_the_command_line(tmp_path: Path, cookiecutter_config: Path) -> None:
    """What a user sees when an answer is refused: the reason, then cookiecutter's own line."""
    refused = subprocess.run(
        [
            sys.executable, "-m", "cookiecutter", "--no-input", "--config-file",
            str(cookiecutter_config), "--output-dir", str(tmp_path), str(TEMPLATE_DIR),
            "project_slug=class",
        ],
        capture_output=True,
        text=True,
        check=False,
    )  # fmt: skip

    assert refused.returncode == 1
    assert refused.stderr.splitlines() == ["error: project_slug 'class' is a Python keyword"]
    # Printed by cookiecutter's command line for any failed hook; the README quotes it.
    assert refused.stdout.splitlines() == [REFUSAL_FOOTER]
    assert REFUSAL_FOOTER in (TEMPLATE_DIR / "README.md").read_text()
    assert list(tmp_path.iterdir()) == []


def test_readme_generation_commands_are_real(tmp_path: Path, cookiecutter_config: Path) -> None:
    """The README's `uvx cookiecutter` forms carry no placeholder, and the git form bakes."""
    readme = (TEMPLATE_DIR / "README.md").read_text()
    commands = re.findall(r"^uvx cookiecutter (\S+)", readme, flags=re.MULTILINE)

    assert "path/to/checkout" in commands
    assert "git+file:///absolute/path/to/checkout" in commands
    assert "OWNER/REPO" not in readme
    # The git form clones the committed template, as a user's `uvx cookiecutter` would.
    project = cookiecutter(
        f"git+file://{TEMPLATE_DIR}",
        no_input=True,
        output_dir=str(tmp_path),
        config_file=str(cookiecutter_config),
    )
    assert (Path(project) / "pyproject.toml").is_file()

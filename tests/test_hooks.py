"""Unit tests of the hooks' helpers, on the unrendered hook files (plain Python by design)."""

from __future__ import annotations

import importlib.util
import json
import logging
import stat
import sys
from pathlib import Path
from types import ModuleType

import pytest

from local_extensions import (
    MAX_SLUG_LENGTH,
    HookRefusalFilter,
    package_slug,
    quiet_hook_refusals,
)
from tests.support import TEMPLATE_DIR

VALID_ANSWERS = {
    "project_name": "Order Desk",
    "project_slug": "order_desk",
    "description": "Takes orders.",
    "author_name": "Jane Doe",
    "author_email": "jane@example.com",
    "version": "0.1.0",
    "use_celery": "y",
    "use_redis": "y",
    "include_example_domain": "y",
    "ci_provider": "github",
    "open_source_license": "MIT",
    "use_opentelemetry": "n",
}


def load_hook(name: str) -> ModuleType:
    path = TEMPLATE_DIR / "hooks" / f"{name}.py"
    spec = importlib.util.spec_from_file_location(f"hooks_{name}", path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    # dataclasses look their module up in sys.modules while resolving string annotations.
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def pre_gen() -> ModuleType:
    return load_hook("pre_gen_project")


@pytest.fixture(scope="module")
def post_gen() -> ModuleType:
    return load_hook("post_gen_project")


class TestPackageSlug:
    """The default `project_slug`, derived from the name by cookiecutter.json's Jinja filter."""

    @pytest.mark.parametrize(
        ("name", "slug"),
        [
            ("My Service", "my_service"),
            ("Acme Billing-API", "acme_billing_api"),
            ("Café Ünïcode & Co's <Shop>", "cafe_unicode_cos_shop"),
            ("Straße Δelta", "strasse_delta"),
            ("  --Order   Desk--  ", "order_desk"),
            ("Bob\u2019s Bikes", "bobs_bikes"),
            ("already_snake_case", "already_snake_case"),
        ],
    )
    def test_transliterates_and_drops_punctuation(self, name: str, slug: str) -> None:
        assert package_slug(name) == slug

    def test_is_short_enough_for_the_hook(self, pre_gen: ModuleType) -> None:
        slug = package_slug("A very long name for the service that runs the whole platform")

        assert slug == "a_very_long_name_for_the_service"
        assert pre_gen.slug_problem(slug) is None
        assert MAX_SLUG_LENGTH == pre_gen.MAX_SLUG_LENGTH

    def test_cookiecutter_json_derives_the_slug_with_it(self) -> None:
        config = json.loads((TEMPLATE_DIR / "cookiecutter.json").read_text())

        assert "local_extensions.TemplateExtension" in config["_extensions"]
        assert "package_slug" in config["project_slug"]


class TestHookRefusalFilter:
    """Cookiecutter logs a traceback when the pre-generation hook refuses; the filter drops it."""

    def record(self, hook: str) -> logging.LogRecord:
        return logging.LogRecord(
            "cookiecutter.hooks",
            logging.ERROR,
            __file__,
            1,
            "Stopping generation because %s hook script didn't exit successfully",
            (hook,),
            None,
        )

    def test_drops_the_pre_generation_refusal(self) -> None:
        assert not HookRefusalFilter().filter(self.record("pre_gen_project"))

    def test_keeps_a_post_generation_failure(self) -> None:
        assert HookRefusalFilter().filter(self.record("post_gen_project"))

    def test_is_installed_once(self) -> None:
        logger = logging.getLogger("tests.quiet")
        quiet_hook_refusals(logger)
        quiet_hook_refusals(logger)

        assert len(logger.filters) == 1


class TestValidate:
    def test_accepts_valid_answers(self, pre_gen: ModuleType) -> None:
        assert pre_gen.validate(VALID_ANSWERS) == []

    @pytest.mark.parametrize(
        ("slug", "reason"),
        [
            ("My-Service", "not a valid Python identifier"),
            ("my service", "not a valid Python identifier"),
            ("", "not a valid Python identifier"),
            ("1st_service", "not a valid Python identifier"),
            ("MyService", "lower case"),
            ("café", "lower case ASCII"),
            ("class", "keyword"),
            ("import", "keyword"),
            ("match", "keyword"),
            ("json", "standard-library"),
            ("typing", "standard-library"),
            ("celery", "dependency"),
            ("redis", "dependency"),
            ("fastapi", "dependency"),
            ("prometheus_client", "dependency"),
            ("test", "dependency or a project folder"),
            ("tests", "dependency or a project folder"),
            ("app", "dependency or a project folder"),
            ("s" * 33, "longer than 32 characters"),
        ],
    )
    def test_rejects_slug(self, pre_gen: ModuleType, slug: str, reason: str) -> None:
        problems = pre_gen.validate({**VALID_ANSWERS, "project_slug": slug})

        assert len(problems) == 1
        assert reason in problems[0]

    @pytest.mark.parametrize(
        "email", ["x", "jane", "jane@", "@example.com", "jane@example", "a b@c.d"]
    )
    def test_rejects_email(self, pre_gen: ModuleType, email: str) -> None:
        problems = pre_gen.validate({**VALID_ANSWERS, "author_email": email})

        assert problems == [f"author_email {email!r} does not look like an e-mail"]

    @pytest.mark.parametrize("version", ["0.1.0", "1", "2.0.0rc1", "1.0.post1", "1.0.dev3"])
    def test_accepts_release_number(self, pre_gen: ModuleType, version: str) -> None:
        assert pre_gen.validate({**VALID_ANSWERS, "version": version}) == []

    @pytest.mark.parametrize("version", ["", "v1", "1.0-beta", "latest"])
    def test_rejects_version(self, pre_gen: ModuleType, version: str) -> None:
        problems = pre_gen.validate({**VALID_ANSWERS, "version": version})

        assert len(problems) == 1
        assert "release number" in problems[0]

    @pytest.mark.parametrize("text", ['The "Best" Service', "C:\\service", "two\nlines"])
    def test_rejects_text_that_breaks_toml_strings(self, pre_gen: ModuleType, text: str) -> None:
        problems = pre_gen.validate({**VALID_ANSWERS, "description": text})

        assert problems == [
            "description must not contain quotes, backslashes or control characters"
        ]

    def test_reports_every_problem(self, pre_gen: ModuleType) -> None:
        answers = {**VALID_ANSWERS, "project_slug": "class", "author_email": "x"}

        assert len(pre_gen.validate(answers)) == 2

    def test_rejects_unsupported_combination(self, pre_gen: ModuleType) -> None:
        unsupported = [({"use_celery": "y", "use_redis": "n"}, "no broker")]

        accepted = pre_gen.validate(VALID_ANSWERS, unsupported)
        rejected = pre_gen.validate({**VALID_ANSWERS, "use_redis": "n"}, unsupported)

        assert accepted == []
        assert rejected == ["use_celery=y, use_redis=n is not supported: no broker"]

    def test_every_combination_is_supported_today(self, pre_gen: ModuleType) -> None:
        assert pre_gen.UNSUPPORTED_COMBINATIONS == ()


PROJECT_TEMPLATE = TEMPLATE_DIR / "{{cookiecutter.project_slug}}"


def test_manifest_paths_exist_in_the_template(post_gen: ModuleType) -> None:
    """Every path the hook prunes is a file or folder the template ships: no dead promises."""
    unmatched = [
        pattern
        for feature in post_gen.MANIFEST
        for pattern in feature.paths
        if not list(PROJECT_TEMPLATE.glob(pattern.format(slug="{{cookiecutter.project_slug}}")))
    ]

    assert unmatched == []


def test_manifest_names_real_options_and_choices(post_gen: ModuleType) -> None:
    choices = json.loads((TEMPLATE_DIR / "cookiecutter.json").read_text())

    for feature in post_gen.MANIFEST:
        assert isinstance(choices[feature.option], list), feature.option
        assert feature.enabled <= set(choices[feature.option]), feature


PYPROJECT = """\
[project]
name = "order-desk"
dependencies = [
    "celery>=5.5,<6",  # background tasks
    "fastapi>=0.121",
    "redis[hiredis]>=6.2",
]

[dependency-groups]
dev = [
    "Celery_Types>=0.23",
    "pytest>=8.4",
]

[[tool.mypy.overrides]]
module = [
    "celery",
    "redis",
]
"""


class TestDropDependencies:
    def test_removes_named_requirements_from_dependency_lists(self, post_gen: ModuleType) -> None:
        result = post_gen.drop_dependencies(PYPROJECT, ["celery", "celery-types", "redis"])

        assert "celery>=5.5" not in result
        assert "Celery_Types" not in result
        assert "redis[hiredis]" not in result
        assert '"fastapi>=0.121",' in result
        assert '"pytest>=8.4",' in result

    def test_leaves_other_arrays_alone(self, post_gen: ModuleType) -> None:
        result = post_gen.drop_dependencies(PYPROJECT, ["celery", "redis"])

        assert result.endswith('module = [\n    "celery",\n    "redis",\n]\n')

    def test_without_names_changes_nothing(self, post_gen: ModuleType) -> None:
        assert post_gen.drop_dependencies(PYPROJECT, []) == PYPROJECT


def make_tree(root: Path, *paths: str) -> None:
    for relative in paths:
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("x")


class TestPrune:
    def test_removes_files_of_disabled_features(self, post_gen: ModuleType, tmp_path: Path) -> None:
        make_tree(
            tmp_path,
            "src/order_desk/tasks/app.py",
            "src/order_desk/api/v1/items.py",
            "src/order_desk/api/v1/users.py",
            "tests/integration/api/v1/test_items.py",
            "tests/unit/services/test_item.py",
            "tests/unit/services/test_user.py",
            ".gitlab-ci.yml",
            ".github/workflows/ci.yml",
            "LICENSE",
        )
        answers = {**VALID_ANSWERS, "use_celery": "n", "include_example_domain": "n"}

        post_gen.prune(tmp_path, answers)

        remaining = {p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*") if p.is_file()}
        assert remaining == {
            "src/order_desk/api/v1/users.py",
            "tests/unit/services/test_user.py",
            ".github/workflows/ci.yml",
            "LICENSE",
        }

    def test_removes_folders_left_empty(self, post_gen: ModuleType, tmp_path: Path) -> None:
        make_tree(tmp_path, "tests/integration/api/v1/test_items.py", "tests/unit/test_x.py")

        post_gen.prune(tmp_path, {**VALID_ANSWERS, "include_example_domain": "n"})

        assert not (tmp_path / "tests/integration").exists()
        assert (tmp_path / "tests/unit/test_x.py").exists()

    def test_splices_the_migration_chain_around_pruned_revisions(
        self, post_gen: ModuleType, tmp_path: Path
    ) -> None:
        versions = tmp_path / "src/order_desk/db/migrations/versions"
        versions.mkdir(parents=True)
        for revision, down in [
            ("0001_users", None),
            ("0002_items", "0001_users"),
            ("0003_api_keys", "0002_items"),
        ]:
            down_text = "None" if down is None else f'"{down}"'
            (versions / f"{revision}.py").write_text(
                f'"""Revision ID: {revision}\nRevises: {down or ""}\n"""\n\n'
                f'revision: str = "{revision}"\n'
                f"down_revision: str | Sequence[str] | None = {down_text}\n"
            )

        post_gen.prune(tmp_path, {**VALID_ANSWERS, "include_example_domain": "n"})

        assert sorted(path.name for path in versions.iterdir()) == [
            "0001_users.py",
            "0003_api_keys.py",
        ]
        spliced = (versions / "0003_api_keys.py").read_text()
        assert 'down_revision: str | Sequence[str] | None = "0001_users"' in spliced
        assert "Revises: 0001_users" in spliced
        assert post_gen.migration_chain(versions) == {
            "0001_users": None,
            "0003_api_keys": "0001_users",
        }

    @pytest.mark.parametrize(
        ("provider", "kept"),
        [("github", {".github"}), ("gitlab", {".gitlab-ci.yml"}), ("none", set())],
    )
    def test_keeps_only_the_chosen_ci(
        self, post_gen: ModuleType, tmp_path: Path, provider: str, kept: set[str]
    ) -> None:
        make_tree(tmp_path, ".github/workflows/ci.yml", ".gitlab-ci.yml")

        post_gen.prune(tmp_path, {**VALID_ANSWERS, "ci_provider": provider})

        assert {p.name for p in tmp_path.iterdir()} == kept

    def test_tolerates_missing_paths(self, post_gen: ModuleType, tmp_path: Path) -> None:
        answers = {**VALID_ANSWERS, "use_celery": "n", "use_redis": "n", "ci_provider": "none"}

        post_gen.prune(tmp_path, answers)

        assert list(tmp_path.iterdir()) == []

    def test_drops_dependencies_of_disabled_features(
        self, post_gen: ModuleType, tmp_path: Path
    ) -> None:
        (tmp_path / "pyproject.toml").write_text(PYPROJECT)

        post_gen.prune(tmp_path, {**VALID_ANSWERS, "use_redis": "n"})

        pyproject = (tmp_path / "pyproject.toml").read_text()
        assert "redis[hiredis]" not in pyproject
        assert "celery>=5.5" in pyproject


ENV_EXAMPLE = """\
# Copy to .env; never commit .env.
ENVIRONMENT=development
SECRET_KEY=change-me-to-a-long-random-string-of-64-characters-or-more-please
POSTGRES_PASSWORD=change-me
DATABASE_URL=postgresql://app:change-me@127.0.0.1:5432/app
# GRAFANA_PASSWORD=change-me
"""


class TestSecrets:
    def test_replaces_secret_key_and_placeholders(self, post_gen: ModuleType) -> None:
        env = dict(
            line.split("=", 1)
            for line in post_gen.fill_secrets(ENV_EXAMPLE).splitlines()
            if not line.startswith("#")
        )

        assert len(env["SECRET_KEY"]) >= 64
        assert "change-me" not in env["SECRET_KEY"] + env["POSTGRES_PASSWORD"]
        assert env["ENVIRONMENT"] == "development"

    def test_same_placeholder_gets_same_secret(self, post_gen: ModuleType) -> None:
        lines = post_gen.fill_secrets(ENV_EXAMPLE).splitlines()
        password = lines[3].removeprefix("POSTGRES_PASSWORD=")

        assert lines[4] == f"DATABASE_URL=postgresql://app:{password}@127.0.0.1:5432/app"

    def test_secrets_differ_between_runs(self, post_gen: ModuleType) -> None:
        assert post_gen.fill_secrets(ENV_EXAMPLE) != post_gen.fill_secrets(ENV_EXAMPLE)

    def test_leaves_comments_alone(self, post_gen: ModuleType) -> None:
        result = post_gen.fill_secrets(ENV_EXAMPLE)

        assert result.splitlines()[0] == "# Copy to .env; never commit .env."
        assert result.endswith("# GRAFANA_PASSWORD=change-me\n")

    def test_writes_private_env_file(self, post_gen: ModuleType, tmp_path: Path) -> None:
        (tmp_path / ".env.example").write_text(ENV_EXAMPLE)

        post_gen.write_env(tmp_path)

        env = tmp_path / ".env"
        assert "SECRET_KEY=change-me" not in env.read_text()
        assert stat.S_IMODE(env.stat().st_mode) == 0o600

    def test_without_example_writes_nothing(self, post_gen: ModuleType, tmp_path: Path) -> None:
        post_gen.write_env(tmp_path)

        assert not (tmp_path / ".env").exists()


def test_shell_scripts_get_lf_endings(post_gen: ModuleType, tmp_path: Path) -> None:
    script = tmp_path / "deploy" / "start.sh"
    script.parent.mkdir()
    script.write_bytes(b"#!/bin/sh\r\necho ready\r\n")

    post_gen.normalise_line_endings(tmp_path)

    assert script.read_bytes() == b"#!/bin/sh\necho ready\n"


class TestRemoveLine:
    MODULE = (
        "from a import b\n"
        "from a.item import Item\n"
        "from a.user import User\n"
        "\n"
        "\n"
        "class Container:\n"
        "    x: int\n"
        "\n"
        "    def users(self) -> int:\n"
        "        return 1\n"
        "\n"
        "    def items(self) -> int:\n"
        "        return (\n"
        "            2\n"
        "        )\n"
        "\n"
        "\n"
        "def build() -> None:\n"
        "    start(\n"
        "        0,\n"
        "    )\n"
        "    if ready:\n"
        "        launch(\n"
        "            1,\n"
        "        )\n"
        "    go()\n"
    )

    def test_removes_a_single_line(self, post_gen: ModuleType) -> None:
        result = post_gen.remove_line(self.MODULE, "from a.item import Item")
        assert result == self.MODULE.replace("from a.item import Item\n", "")

    def test_removes_a_method_with_its_body_and_the_blank_line_above(
        self, post_gen: ModuleType
    ) -> None:
        result = post_gen.remove_line(self.MODULE, "def items(self) -> int:")
        assert "items" not in result
        assert "        return 1\n\n\ndef build() -> None:\n" in result

    def test_removes_a_nested_block_and_keeps_its_neighbours(self, post_gen: ModuleType) -> None:
        result = post_gen.remove_line(self.MODULE, "if ready:")
        assert result.endswith("        0,\n    )\n    go()\n")

    def test_removes_a_wrapped_statement(self, post_gen: ModuleType) -> None:
        result = post_gen.remove_line(self.MODULE, "start(")
        assert "0," not in result
        assert "def build() -> None:\n    if ready:\n" in result

    def test_a_missing_or_repeated_line_is_an_error(self, post_gen: ModuleType) -> None:
        with pytest.raises(LookupError, match="found it 0 times"):
            post_gen.remove_line(self.MODULE, "import nothing")
        with pytest.raises(LookupError, match="found it 2 times"):
            post_gen.remove_line(self.MODULE + "from a import b\n", "from a import b")


@pytest.mark.parametrize(
    ("use_celery", "use_redis", "services"),
    [
        ("y", "y", "PostgreSQL and Redis"),
        ("y", "n", "PostgreSQL and RabbitMQ"),
        ("n", "y", "PostgreSQL and Redis"),
        ("n", "n", "PostgreSQL"),
    ],
)
def test_next_steps_name_the_services_the_tests_need(
    post_gen: ModuleType, use_celery: str, use_redis: str, services: str
) -> None:
    answers = {**VALID_ANSWERS, "use_celery": use_celery, "use_redis": use_redis}

    steps = post_gen.next_steps(Path("order_desk"), answers)

    assert f"make test   # the whole suite, on real {services} (see README.md)" in steps


class TestCruftState:
    """`.cruft.json`: where the project came from, its answers, and the files the user owns."""

    def test_a_folder_outside_git_records_no_commit(
        self, post_gen: ModuleType, tmp_path: Path
    ) -> None:
        answers = {**VALID_ANSWERS, "_template": "template", "_checkout": None}
        source = post_gen.template_source(answers, tmp_path)
        assert source.commit == ""
        assert source.template == str(tmp_path)

    def test_cruft_regenerating_passes_its_own_commit(
        self, post_gen: ModuleType, tmp_path: Path
    ) -> None:
        answers = {**VALID_ANSWERS, "_template": "https://example.com/t.git", "_commit": "abc"}
        source = post_gen.template_source(answers, tmp_path)
        assert (source.template, source.commit) == ("https://example.com/t.git", "abc")

    @pytest.mark.parametrize(
        ("template", "url"),
        [
            ("gh:acme/service-template", "https://github.com/acme/service-template.git"),
            ("git+https://example.com/t.git", "https://example.com/t.git"),
            ("git@example.com:acme/t.git", "git@example.com:acme/t.git"),
        ],
    )
    def test_remote_templates_are_recorded_as_clonable_urls(
        self, post_gen: ModuleType, template: str, url: str
    ) -> None:
        assert post_gen.is_remote(template)
        assert post_gen.expand_abbreviation(template) == url

    def test_local_paths_are_not_remote(self, post_gen: ModuleType) -> None:
        assert not post_gen.is_remote("../service-template")
        assert not post_gen.is_remote("/srv/templates/service")

    def test_records_answers_without_cookiecutter_internals(self, post_gen: ModuleType) -> None:
        answers = {**VALID_ANSWERS, "_repo_dir": "/srv/t", "_output_dir": "/srv/o"}
        source = post_gen.TemplateSource("https://example.com/t.git", "abc", None)
        state = json.loads(post_gen.cruft_state(answers, source, [".env"]))
        assert state["template"] == "https://example.com/t.git"
        assert state["commit"] == "abc"
        assert state["skip"] == [".env"]
        context = state["context"]["cookiecutter"]
        assert context == {
            **VALID_ANSWERS,
            "_template": "https://example.com/t.git",
            "_commit": "abc",
        }

    def test_skip_lists_env_and_the_baked_migrations(
        self, post_gen: ModuleType, tmp_path: Path
    ) -> None:
        versions = tmp_path / "src" / "order_desk" / "db" / "migrations" / "versions"
        versions.mkdir(parents=True)
        (versions / "0001_users.py").touch()
        (versions / "README").touch()
        assert post_gen.owned_files(tmp_path, "order_desk") == [
            ".cruft.json",
            ".env",
            "src/order_desk/db/migrations/versions/0001_users.py",
        ]

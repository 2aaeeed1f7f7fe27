"""Finish the generated project: prune disabled features, write `.env`, say what to do next.

Cookiecutter renders this file with Jinja and runs it inside the new project folder. The answers
reach the code only through the string literal `ANSWERS`, so the file is plain Python before
rendering too, and the template's tests import it to test the helpers below.

Option logic lives here rather than in Jinja `if` blocks: the files of a feature are written
unconditionally and removed when the feature is off, which keeps pyproject.toml and the CI files
free of Jinja for dependency bots. A feature's entries in the shared registries (the container's
service factories, the router list, the model registry, ...) are single lines or blocks that are
removed the same way, so those modules read in the template exactly as they are generated.
"""

from __future__ import annotations

import base64
import json
import re
import secrets
import shutil
import subprocess
import sys
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

# Raw and triple-quoted: JSON escapes every quote and never ends in a backslash.
ANSWERS = r"""{{ cookiecutter | tojson }}"""
# The template's folder, absolute: cookiecutter renders hooks with it as the working directory,
# while `_repo_dir` may be relative to a directory the hook never sees.
TEMPLATE_DIR = r"""{{ rendering_dir() }}"""


@dataclass(frozen=True)
class Feature:
    """What belongs to one option: removed unless the answer is one of `enabled`."""

    option: str
    enabled: frozenset[str]
    # Relative to the project root; `{slug}` is the package name; globs allowed. Each must match
    # a file of the template (tests/test_hooks.py checks it), so the list never promises more.
    paths: tuple[str, ...] = ()
    # Distribution names dropped from pyproject.toml's dependency lists.
    dependencies: tuple[str, ...] = ()
    # (file, line) pairs: each line, stripped, is removed from the file with the block it opens.
    lines: tuple[tuple[str, str], ...] = ()


YES = frozenset({"y"})

MANIFEST = (
    Feature(
        "use_celery",
        YES,
        paths=(
            "src/{slug}/tasks",
            "src/{slug}/worker.py",
            "tests/unit/tasks",
            "tests/e2e/test_worker.py",
            "tests/e2e/test_worker_metrics.py",
            # Follows a request's trace into a task (tracing and the example domain prune it too).
            "tests/integration/test_items_telemetry.py",
            # Follows a request's trace into a real worker (tracing prunes it too).
            "tests/e2e/test_worker_telemetry.py",
            "deploy/k8s/base/worker-deployment.yaml",
            "deploy/k8s/base/beat-deployment.yaml",
            "deploy/k8s/overlays/*/worker-replicas.yaml",
        ),
        dependencies=("celery", "celery-types", "opentelemetry-instrumentation-celery"),
        lines=(
            (
                "src/{slug}/core/telemetry.py",
                "from opentelemetry.instrumentation.celery import CeleryInstrumentor",
            ),
            (
                "src/{slug}/core/telemetry.py",
                "# Carries a request's trace into the tasks it enqueues, worker included.",
            ),
            (
                "src/{slug}/core/telemetry.py",
                "CeleryInstrumentor(),  # type: ignore[no-untyped-call]",
            ),
            ("src/{slug}/core/telemetry.py", "def instrument_worker() -> None:"),
            ("src/{slug}/container.py", "tasks: TaskApp"),
            ("src/{slug}/container.py", "from functools import partial"),
            ("src/{slug}/container.py", "tasks=tasks,"),
            ("deploy/k8s/base/kustomization.yaml", "- worker-deployment.yaml"),
            ("deploy/k8s/base/kustomization.yaml", "- beat-deployment.yaml"),
            ("deploy/k8s/overlays/dev/kustomization.yaml", "- path: worker-replicas.yaml"),
            ("deploy/k8s/overlays/prod/kustomization.yaml", "- path: worker-replicas.yaml"),
        ),
    ),
    Feature(
        "use_redis",
        YES,
        paths=(
            "src/{slug}/core/rate_limit_redis.py",
            "src/{slug}/core/auth_redis.py",
            "src/{slug}/core/cache_redis.py",
            "tests/integration/core/*rate_limit_redis*",
            "tests/integration/core/*auth_redis*",
            "tests/integration/core/*cache_redis*",
            "tests/integration/api/v1/*cache_redis*",
            "tests/e2e/*cache_redis*",
        ),
        dependencies=("redis", "opentelemetry-instrumentation-redis"),
        lines=(
            (
                "src/{slug}/core/telemetry.py",
                "from opentelemetry.instrumentation.redis import RedisInstrumentor",
            ),
            ("src/{slug}/core/telemetry.py", "RedisInstrumentor(),"),
            ("src/{slug}/core/config.py", "if not self.redis_url:"),
            ("src/{slug}/container.py", "from redis.asyncio import Redis"),
            ("src/{slug}/container.py", "from redis.exceptions import RedisError"),
            ("src/{slug}/container.py", "from {slug}.core.auth_redis import ("),
            ("src/{slug}/container.py", "from {slug}.core.rate_limit_redis import ("),
            ("src/{slug}/container.py", "from {slug}.core.cache_redis import ("),
            ("src/{slug}/container.py", "redis: Redis | None"),
            ("src/{slug}/container.py", "redis: Redis | None = None"),
            ("src/{slug}/container.py", "if settings.redis_url:"),
            ("src/{slug}/container.py", "redis=redis,"),
        ),
    ),
    Feature(
        "include_example_domain",
        YES,
        paths=(
            "src/{slug}/api/v1/items.py",
            "src/{slug}/services/item.py",
            "src/{slug}/repositories/item.py",
            "src/{slug}/models/item.py",
            "src/{slug}/schemas/item.py",
            "src/{slug}/handlers/items.py",
            "src/{slug}/api/v1/upstream.py",
            "src/{slug}/services/upstream.py",
            "src/{slug}/integrations/upstream.py",
            "src/{slug}/schemas/upstream.py",
            "src/{slug}/db/migrations/versions/0002_items.py",
            "src/{slug}/db/migrations/versions/0004_items_indexes.py",
            "tests/**/test_items.py",
            "tests/**/test_items_*.py",
            "tests/**/test_item.py",
            "tests/**/test_upstream.py",
        ),
        lines=(
            ("src/{slug}/container.py", "from {slug}.repositories.item import ItemRepository"),
            ("src/{slug}/container.py", "from {slug}.services.item import ItemService"),
            ("src/{slug}/container.py", "def items(self, uow: UnitOfWork) -> ItemService:"),
            ("src/{slug}/container.py", "from {slug}.integrations.upstream import ("),
            ("src/{slug}/container.py", "from {slug}.services.upstream import UpstreamService"),
            ("src/{slug}/container.py", "upstream: UpstreamClient | None"),
            ("src/{slug}/container.py", "def upstream_status(self) -> UpstreamService:"),
            ("src/{slug}/container.py", "upstream=create_upstream_client(http, settings),"),
            ("src/{slug}/api/deps.py", "from {slug}.services.upstream import UpstreamService"),
            (
                "src/{slug}/api/deps.py",
                "async def get_upstream_service(container: ContainerDep) -> UpstreamService:",
            ),
            (
                "src/{slug}/api/deps.py",
                "UpstreamServiceDep = Annotated[UpstreamService, Depends(get_upstream_service)]",
            ),
            (
                "src/{slug}/api/v1/__init__.py",
                "from {slug}.api.v1.upstream import router as upstream_router",
            ),
            ("src/{slug}/api/v1/__init__.py", "router.include_router(upstream_router)"),
            ("src/{slug}/api/deps.py", "from {slug}.services.item import ItemService"),
            (
                "src/{slug}/api/deps.py",
                "ItemServiceDep = Annotated[ItemService, Depends(service(Container.items))]",
            ),
            (
                "src/{slug}/api/v1/__init__.py",
                "from {slug}.api.v1.items import router as items_router",
            ),
            ("src/{slug}/api/v1/__init__.py", "router.include_router(items_router)"),
        ),
    ),
    Feature(
        "use_opentelemetry",
        YES,
        paths=(
            "src/{slug}/core/telemetry.py",
            "tests/**/*telemetry*",
        ),
        dependencies=(
            "opentelemetry-api",
            "opentelemetry-exporter-otlp-proto-http",
            "opentelemetry-instrumentation-celery",
            "opentelemetry-instrumentation-fastapi",
            "opentelemetry-instrumentation-httpx",
            "opentelemetry-instrumentation-redis",
            "opentelemetry-instrumentation-sqlalchemy",
            "opentelemetry-sdk",
        ),
        lines=(
            ("src/{slug}/core/logging.py", "from {slug}.core.telemetry import log_processors"),
            ("src/{slug}/core/logging.py", "shared += log_processors()"),
            ("src/{slug}/container.py", "from {slug}.core.telemetry import tracing"),
            ("src/{slug}/container.py", "event_tracing = stack.enter_context(tracing(engine))"),
            ("src/{slug}/main.py", "from {slug}.core.telemetry import instrument_app"),
            ("src/{slug}/worker.py", "from {slug}.core.telemetry import instrument_worker"),
            (
                "src/{slug}/worker.py",
                "instrument_worker()  # task spans from the first task on, when tracing is on",
            ),
            (
                "src/{slug}/main.py",
                "instrument_app(app)  # server spans around everything, when tracing is on",
            ),
        ),
    ),
    Feature("ci_provider", frozenset({"github"}), paths=(".github",)),
    Feature("ci_provider", frozenset({"gitlab"}), paths=(".gitlab-ci.yml",)),
    Feature("open_source_license", frozenset({"MIT", "Apache-2.0"}), paths=("LICENSE",)),
)

# A placeholder in .env.example that must become a secret: `change-me` and what follows it.
PLACEHOLDER = re.compile(r"change-me[\w-]*", re.IGNORECASE)

# A line opening a TOML array, `dev = [`, and a requirement line inside one, `"name[x]>=1",`.
ARRAY_START = re.compile(r"(?P<key>[\w.-]+)\s*=\s*\[\s*(#.*)?")
REQUIREMENT = re.compile(r'"(?P<name>[A-Za-z0-9][A-Za-z0-9._-]*)[^"]*",?\s*(#.*)?')
DEPENDENCY_TABLES = frozenset({"[dependency-groups]", "[project.optional-dependencies]"})


def disabled(answers: Mapping[str, str], manifest: Iterable[Feature] = MANIFEST) -> list[Feature]:
    return [feature for feature in manifest if answers[feature.option] not in feature.enabled]


def remove_paths(root: Path, patterns: Iterable[str]) -> list[Path]:
    """Delete what `patterns` match under `root`; return what was deleted.

    A pattern matching nothing here is not an error (an earlier pattern may have removed it); that
    every pattern matches something in the template is checked by the template's tests.
    """
    removed: list[Path] = []
    for pattern in patterns:
        for path in sorted(root.glob(pattern)):
            if path.is_dir() and not path.is_symlink():
                shutil.rmtree(path)
            elif path.exists() or path.is_symlink():
                path.unlink()
            else:
                continue  # inside a folder an earlier pattern removed
            removed.append(path)
    return removed


def remove_empty_parents(root: Path, removed: Iterable[Path]) -> None:
    """Remove folders that pruning left empty, up to (not including) `root`."""
    for path in removed:
        parent = path.parent
        while parent != root and parent.is_dir() and not any(parent.iterdir()):
            parent.rmdir()
            parent = parent.parent


def canonical_name(name: str) -> str:
    """PEP 503 normalisation: `Celery_Types` and `celery-types` are the same distribution."""
    return re.sub(r"[-_.]+", "-", name).lower()


def opens_dependency_array(table: str, line: str) -> bool:
    match = ARRAY_START.fullmatch(line)
    if match is None:
        return False
    return table in DEPENDENCY_TABLES or (table == "[project]" and match["key"] == "dependencies")


def requirement_name(line: str) -> str | None:
    match = REQUIREMENT.fullmatch(line)
    return canonical_name(match["name"]) if match else None


def drop_dependencies(pyproject: str, names: Collection[str]) -> str:
    """Remove the requirement lines for `names` from every dependency list in `pyproject`.

    Works on the text, not a parsed document, so that comments and layout survive. It expects what
    the generated pyproject.toml uses: arrays opened on the key's line, one requirement per line.
    """
    unwanted = {canonical_name(name) for name in names}
    kept: list[str] = []
    table = ""
    in_array = False
    for line in pyproject.splitlines(keepends=True):
        stripped = line.strip()
        if in_array:
            if stripped.startswith("]"):
                in_array = False
            elif requirement_name(stripped) in unwanted:
                continue
        elif stripped.startswith("["):
            table = stripped
        else:
            in_array = opens_dependency_array(table, stripped)
        kept.append(line)
    return "".join(kept)


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip())


def remove_line(source: str, line: str) -> str:
    """`source` without the line that reads `line` (ignoring indentation) and its block.

    A line ending in `:` takes its indented body with it, one ending in `(` everything up to its
    closing bracket. Blank lines just above the removed lines go too when blank lines follow
    them, so the spacing a formatter expects between the remaining statements stays.
    Raises `LookupError` when the line is not there: a manifest that drifted from the code.
    """
    lines = source.splitlines(keepends=True)
    matches = [index for index, text in enumerate(lines) if text.strip() == line.strip()]
    if len(matches) != 1:
        raise LookupError(f"expected the line {line!r} once, found it {len(matches)} times")
    start = end = matches[0]
    if lines[start].rstrip().endswith("("):
        # A wrapped statement (an import, a call): through its closing bracket.
        indent = _indent(lines[start])
        while not (lines[end].strip().startswith(")") and _indent(lines[end]) == indent):
            end += 1
    elif lines[start].rstrip().endswith(":"):
        indent = _indent(lines[start])
        end += 1
        while end + 1 < len(lines) and (
            not lines[end + 1].strip() or _indent(lines[end + 1]) > indent
        ):
            end += 1
        # Blank lines after the body separate it from what follows; keep them.
        while end > start and not lines[end].strip():
            end -= 1
    # A span with blank lines (or the end of the file) below gives up the blank lines above it;
    # one between two statements keeps them, as they separate its neighbours.
    if end + 1 >= len(lines) or not lines[end + 1].strip():
        while start > 0 and not lines[start - 1].strip():
            start -= 1
    return "".join(lines[:start] + lines[end + 1 :])


def remove_lines(root: Path, slug: str, entries: Iterable[tuple[str, str]]) -> None:
    for relative, line in entries:
        path = root / relative.format(slug=slug)
        if not path.exists():
            continue  # the whole file went with the feature
        text = remove_line(path.read_text(encoding="utf-8"), line.format(slug=slug))
        path.write_text(text, encoding="utf-8")


MIGRATIONS = "src/{slug}/db/migrations/versions"
REVISION = re.compile(r'^revision: str = "(?P<id>[^"]+)"$', re.MULTILINE)
DOWN_REVISION = re.compile(
    r'^(?P<head>down_revision: [^=]+= )(?:"(?P<id>[^"]+)"|None)$', re.MULTILINE
)


def migration_chain(versions: Path) -> dict[str, str | None]:
    """Revision -> the revision it revises, for every migration file in `versions`."""
    chain: dict[str, str | None] = {}
    for path in versions.glob("*.py"):
        text = path.read_text(encoding="utf-8")
        revision, down = REVISION.search(text), DOWN_REVISION.search(text)
        if revision and down:
            chain[revision["id"]] = down["id"]
    return chain


def splice_migrations(versions: Path, chain: Mapping[str, str | None]) -> None:
    """Point each remaining migration past the ones pruning removed, so one linear chain stays.

    A feature's migrations sit in the one history every project shares (a later feature's
    revision may follow an example-domain one); without them, its successor revises what they
    revised.
    """
    remaining = migration_chain(versions)
    for path in versions.glob("*.py"):
        text = path.read_text(encoding="utf-8")
        down = DOWN_REVISION.search(text)
        if down is None or down["id"] is None or down["id"] in remaining:
            continue
        target = chain.get(down["id"])
        while target is not None and target not in remaining:
            target = chain.get(target)
        replacement = down["head"] + ("None" if target is None else f'"{target}"')
        text = text[: down.start()] + replacement + text[down.end() :]
        text = text.replace(f"Revises: {down['id']}", f"Revises: {target or ''}".rstrip(), 1)
        path.write_text(text, encoding="utf-8")


def prune(root: Path, answers: Mapping[str, str], manifest: Iterable[Feature] = MANIFEST) -> None:
    """Delete the files and dependencies of every feature the answers turn off."""
    features = disabled(answers, manifest)
    slug = answers["project_slug"]
    versions = root / MIGRATIONS.format(slug=slug)
    chain = migration_chain(versions)
    patterns = [pattern.format(slug=slug) for feature in features for pattern in feature.paths]
    remove_empty_parents(root, remove_paths(root, patterns))
    splice_migrations(versions, chain)
    remove_lines(root, slug, [entry for feature in features for entry in feature.lines])

    dependencies = [name for feature in features for name in feature.dependencies]
    pyproject = root / "pyproject.toml"
    if dependencies and pyproject.exists():
        text = pyproject.read_text(encoding="utf-8")
        pyproject.write_text(drop_dependencies(text, dependencies), encoding="utf-8")


def fill_secrets(example: str) -> str:
    """`.env.example` with every `change-me…` placeholder, SECRET_KEY and ENCRYPTION_KEYS
    replaced by a secret.

    A placeholder that occurs twice (a password and the URL that embeds it) gets the same secret.
    """
    generated: dict[str, str] = {}

    def secret_for(match: re.Match[str]) -> str:
        return generated.setdefault(match[0], secrets.token_urlsafe(64))

    lines = []
    for line in example.splitlines(keepends=True):
        key, separator, value = line.partition("=")
        if separator and key.strip() == "SECRET_KEY":
            ending = line[len(line.rstrip("\r\n")) :]
            line = f"{key}={secrets.token_urlsafe(64)}{ending}"
        elif separator and key.strip() == "ENCRYPTION_KEYS":
            # A Fernet key: url-safe base64 of 32 random bytes.
            ending = line[len(line.rstrip("\r\n")) :]
            line = f"{key}={base64.urlsafe_b64encode(secrets.token_bytes(32)).decode()}{ending}"
        elif separator and not key.lstrip().startswith("#"):
            line = key + separator + PLACEHOLDER.sub(secret_for, value)
        lines.append(line)
    return "".join(lines)


def write_env(root: Path) -> None:
    """Write `.env` (never committed) from `.env.example` (committed), with fresh secrets."""
    example = root / ".env.example"
    if not example.exists():
        return
    env = root / ".env"
    env.write_text(fill_secrets(example.read_text(encoding="utf-8")), encoding="utf-8")
    env.chmod(0o600)


def normalise_line_endings(root: Path) -> None:
    """Shell scripts with CRLF fail in containers with `bash\\r: not found` (Windows checkouts)."""
    for script in root.rglob("*.sh"):
        content = script.read_bytes()
        if b"\r\n" in content:
            script.write_bytes(content.replace(b"\r\n", b"\n"))


def test_services(answers: Mapping[str, str]) -> str:
    """The services the generated test suite needs, in words."""
    services = ["PostgreSQL"]
    if answers["use_redis"] == "y":
        services.append("Redis")
    elif answers["use_celery"] == "y":
        services.append("RabbitMQ")
    return " and ".join(services)


def next_steps(root: Path, answers: Mapping[str, str]) -> str:
    return (
        f"\nCreated {root.name} in {root}.\n\n"
        "Next steps:\n"
        f"  cd {root.name}\n"
        "  make dev    # serves http://127.0.0.1:8000/docs on SQLite, no services needed\n"
        f"  make test   # the whole suite, on real {test_services(answers)} (see README.md)\n"
    )


@dataclass(frozen=True)
class TemplateSource:
    """Where a project was baked from, as cruft records it."""

    template: str
    commit: str
    checkout: str | None
    # The template's folder inside its repository, when it is not the top level.
    directory: str = ""


def git(folder: Path, *args: str) -> str | None:
    """`git args` in `folder`, its output stripped; None when git or the repository is missing."""
    executable = shutil.which("git")
    if executable is None:
        return None
    try:
        # The arguments are this module's own constants, never user input.
        result = subprocess.run(  # noqa: S603
            [executable, *args], cwd=folder, capture_output=True, text=True, check=False, timeout=30
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return result.stdout.strip() if result.returncode == 0 else None


def is_remote(template: str) -> bool:
    return bool(re.match(r"^(gh|gl|bb|git\+\w+|https?|ssh|git|file):|^[\w.-]+@[\w.-]+:", template))


def expand_abbreviation(template: str) -> str:
    """`gh:owner/repo` as the URL git clones (cruft clones with git, not with cookiecutter)."""
    hosts = {
        "gh": "https://github.com/{}.git",
        "gl": "https://gitlab.com/{}.git",
        "bb": "https://bitbucket.org/{}",
    }
    prefix, _, rest = template.partition(":")
    if prefix in hosts:
        return hosts[prefix].format(rest)
    return template.removeprefix("git+")


def template_source(answers: Mapping[str, object], template_dir: Path) -> TemplateSource:
    """The template's source and commit, from cruft's context or the template's git checkout.

    During `cruft update` cruft regenerates the project and passes `_commit` itself. Otherwise
    the commit is the checkout's HEAD when the template folder is in a git repository, and empty
    when it is not (a copy, an unpacked archive): such a project cannot be updated until it is
    linked to a commit (`cruft link`, README "Keeping up with the template").
    """
    template = str(answers.get("_template") or template_dir)
    checkout = answers.get("_checkout")
    checkout = str(checkout) if checkout else None
    if answers.get("_commit"):
        return TemplateSource(template, str(answers["_commit"]), checkout)
    commit = git(template_dir, "rev-parse", "HEAD") or ""
    top = git(template_dir, "rev-parse", "--show-toplevel")
    if not commit or not top:
        return TemplateSource(str(template_dir), "", checkout)
    directory = Path(template_dir).resolve().relative_to(Path(top).resolve()).as_posix()
    source = expand_abbreviation(template) if is_remote(template) else top
    return TemplateSource(source, commit, checkout, "" if directory == "." else directory)


def owned_files(root: Path, slug: str) -> list[str]:
    """Generated files the user owns from now on: template updates never touch them.

    `.env` holds this project's secrets. The migrations present now are the database's history
    once applied: a later template edit to them must not rewrite it. Migrations the user adds
    are not generated, so updates never touch them anyway. `.cruft.json` is cruft's own record.
    """
    versions = root / "src" / slug / "db" / "migrations" / "versions"
    migrations = sorted(path.relative_to(root).as_posix() for path in versions.glob("*.py"))
    return [".cruft.json", ".env", *migrations]


def cruft_state(answers: Mapping[str, object], source: TemplateSource, skip: list[str]) -> str:
    """The `.cruft.json` text: what `cruft check` and `cruft update` read."""
    context = {key: value for key, value in answers.items() if not key.startswith("_")}
    context.update(_template=source.template, _commit=source.commit)
    state: dict[str, object] = {
        "template": source.template,
        "commit": source.commit,
        "checkout": source.checkout,
        "context": {"cookiecutter": context},
        "directory": source.directory or None,
        "skip": skip,
    }
    return json.dumps(state, indent=2, ensure_ascii=False) + "\n"


def write_cruft_state(root: Path, answers: Mapping[str, object], template_dir: Path) -> None:
    source = template_source(answers, template_dir)
    skip = owned_files(root, str(answers["project_slug"]))
    (root / ".cruft.json").write_text(cruft_state(answers, source, skip), encoding="utf-8")
    if not source.commit:
        print(
            f"note: {template_dir} is not a git checkout, so .cruft.json records no commit;"
            " see README.md, Keeping up with the template",
            file=sys.stderr,
        )


def main() -> int:
    root = Path.cwd()
    answers = json.loads(ANSWERS)
    prune(root, answers)
    write_env(root)
    write_cruft_state(root, answers, Path(TEMPLATE_DIR))
    normalise_line_endings(root)
    if not answers.get("_commit"):  # `cruft update` regenerating the project has no next step
        print(next_steps(root, answers))
    return 0


if __name__ == "__main__":
    sys.exit(main())

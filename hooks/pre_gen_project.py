"""Refuse answers that would produce a broken project, before anything is written.

Cookiecutter renders this file with Jinja and runs it; a non-zero exit makes it delete the output
folder. The answers reach the code only through the string literal `ANSWERS`, so the file is plain
Python before rendering too, and the template's tests import it to test `validate`.
"""

from __future__ import annotations

import json
import keyword
import re
import sys
from collections.abc import Mapping, Sequence

# Raw and triple-quoted: JSON escapes every quote and never ends in a backslash, so any answer
# (quotes, backslashes, non-ASCII) survives intact.
ANSWERS = r"""{{ cookiecutter | tojson }}"""

# Import names the generated project depends on, or would shadow for its users: a package with one
# of these names breaks `import` of the real one. Standard-library names are checked separately.
RESERVED_NAMES = frozenset(
    {
        # runtime dependencies and what they pull in
        "aiosqlite", "alembic", "amqp", "anyio", "argon2", "asyncpg", "billiard", "celery",
        "click", "cryptography", "email_validator", "fastapi", "filelock", "greenlet", "h11",
        "httptools", "jose", "kombu", "mako", "multipart", "orjson", "passlib", "prometheus_client",
        "prometheus_fastapi_instrumentator", "pydantic", "pydantic_core", "pydantic_settings",
        "python_multipart", "redis", "sqlalchemy", "starlette", "structlog", "tenacity", "typer",
        "uvicorn", "uvloop", "vine", "watchfiles", "websockets",
        # development tools
        "asgi_lifespan", "coverage", "httpx", "importlinter", "mypy", "pytest", "pytest_asyncio",
        "ruff", "testcontainers", "xdist",
        # names that collide with the project's own layout or with test discovery
        "app", "conftest", "src", "test", "tests",
    }
)  # fmt: skip

# Keeps generated lines within the formatter's width and the migrator's application_name (63
# bytes in PostgreSQL) whole.
MAX_SLUG_LENGTH = 32

EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")

# A plain release such as 1.0, 0.1.0 or 2.0.0rc1: the subset of PEP 440 a first version needs.
VERSION = re.compile(r"\d+(\.\d+)*((a|b|rc)\d+)?(\.post\d+)?(\.dev\d+)?")

# Written inside double-quoted TOML strings in pyproject.toml.
QUOTED_ANSWERS = ("project_name", "description", "author_name")

# (answers that cannot go together, why). Every combination of the current options is supported;
# a new option that conflicts with another gets a row here and a case in tests/test_bake.py.
UNSUPPORTED_COMBINATIONS: Sequence[tuple[Mapping[str, str], str]] = ()


def slug_problem(slug: str) -> str | None:
    """Why `slug` cannot name the generated package, or None when it can."""
    if not slug.isidentifier():
        return f"project_slug {slug!r} is not a valid Python identifier"
    if len(slug) > MAX_SLUG_LENGTH:
        return f"project_slug {slug!r} is longer than {MAX_SLUG_LENGTH} characters"
    if not slug.isascii() or slug != slug.lower():
        return f"project_slug {slug!r} must be lower case ASCII"
    if keyword.iskeyword(slug) or keyword.issoftkeyword(slug):
        return f"project_slug {slug!r} is a Python keyword"
    if slug in sys.stdlib_module_names:
        return f"project_slug {slug!r} would shadow the standard-library module of that name"
    if slug in RESERVED_NAMES:
        return f"project_slug {slug!r} would shadow a dependency or a project folder of that name"
    return None


def validate(
    answers: Mapping[str, str],
    unsupported: Sequence[tuple[Mapping[str, str], str]] = UNSUPPORTED_COMBINATIONS,
) -> list[str]:
    """Every reason the answers cannot be generated, one line each; empty when they can."""
    problems: list[str] = []
    if (problem := slug_problem(answers["project_slug"])) is not None:
        problems.append(problem)
    if not EMAIL.fullmatch(answers["author_email"]):
        problems.append(f"author_email {answers['author_email']!r} does not look like an e-mail")
    if not VERSION.fullmatch(answers["version"]):
        problems.append(f"version {answers['version']!r} is not a release number such as 0.1.0")
    for key in QUOTED_ANSWERS:
        if any(char in answers[key] for char in '"\\') or not answers[key].isprintable():
            problems.append(f"{key} must not contain quotes, backslashes or control characters")
    for combination, reason in unsupported:
        if all(answers.get(key) == value for key, value in combination.items()):
            chosen = ", ".join(f"{key}={value}" for key, value in combination.items())
            problems.append(f"{chosen} is not supported: {reason}")
    return problems


def main() -> int:
    problems = validate(json.loads(ANSWERS))
    for problem in problems:
        print(f"error: {problem}", file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())

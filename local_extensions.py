"""Jinja extensions that cookiecutter loads from this folder (`_extensions` in cookiecutter.json).

Cookiecutter puts the template's folder on `sys.path` while it renders, so this module is imported
by the process that generates the project; the template's tests import it to test `package_slug`.
"""

from __future__ import annotations

import logging
import os
import re

from jinja2 import Environment
from jinja2.ext import Extension
from slugify import slugify

# Kept in step with MAX_SLUG_LENGTH in hooks/pre_gen_project.py (a test checks it).
MAX_SLUG_LENGTH = 32

# Apostrophes join the letters around them (`Co's` is one word, `cos`), like in English spelling;
# every other run of punctuation or spaces separates words.
APOSTROPHES = re.compile(r"['\u2019\u02bc`]")

# What cookiecutter logs, with its own traceback, when the pre-generation hook refuses an answer.
HOOK_REFUSAL = "Stopping generation because pre_gen_project hook"


def package_slug(name: str) -> str:
    """A package name from any project name: ASCII, lower case, `_` between words, at most 32."""
    return slugify(APOSTROPHES.sub("", name), separator="_", max_length=MAX_SLUG_LENGTH)


class HookRefusalFilter(logging.Filter):
    """Drop cookiecutter's traceback for a refused answer: the hook has printed the reason."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not record.getMessage().startswith(HOOK_REFUSAL)


def quiet_hook_refusals(logger: logging.Logger) -> None:
    if not any(isinstance(existing, HookRefusalFilter) for existing in logger.filters):
        logger.addFilter(HookRefusalFilter())


def rendering_dir() -> str:
    """The working directory while rendering: the template's folder when a hook is rendered."""
    return os.getcwd()


class TemplateExtension(Extension):
    """The `package_slug` filter used by cookiecutter.json's default `project_slug`, and
    `rendering_dir()`, which tells the post-generation hook where the template lives."""

    def __init__(self, environment: Environment) -> None:
        super().__init__(environment)
        environment.filters["package_slug"] = package_slug
        environment.globals["rendering_dir"] = rendering_dir
        # Cookiecutter creates this environment before it runs the hooks, in the same process.
        quiet_hook_refusals(logging.getLogger("cookiecutter.hooks"))

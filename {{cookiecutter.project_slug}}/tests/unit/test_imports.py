"""Importing the package has no side effects: no settings read, no client, no Celery app."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

PROBE = textwrap.dedent(
    """
    import gc, importlib, json, os, pkgutil

    import {{ cookiecutter.project_slug }} as package
    from {{ cookiecutter.project_slug }}.core import config

    def refuse():
        raise RuntimeError("get_settings() called at import time")

    # The service's own variables; libraries may look at theirs (NO_COLOR, ...) as they like.
    variables = {name.upper() for name in config.Settings.model_fields}
    config.get_settings = refuse
    config.load_settings = refuse
    reads = []

    class Environ(dict):
        def __getitem__(self, key):
            reads.append(key)
            return super().__getitem__(key)

        def get(self, key, default=None):
            reads.append(key)
            return super().get(key, default)

    names = []
    for module in pkgutil.walk_packages(package.__path__, package.__name__ + "."):
        # Alembic runs env.py as a script inside a migration context; it is not imported.
        if module.name.endswith(".db.migrations.env"):
            continue
        os.environ = Environ(os.environ)
        importlib.import_module(module.name)
        own = sorted(variables.intersection(reads))
        if own:
            raise RuntimeError(f"importing {module.name} read {own}")
        names.append(module.name)

    try:
        from celery import _state
        apps = [app.main for app in _state._get_active_apps()]
    except ImportError:
        apps = []

    # type(), not isinstance(): the latter would evaluate Celery's lazy task proxies.
    def instances(cls):
        return sum(issubclass(type(obj), cls) for obj in gc.get_objects())

    from sqlalchemy.ext.asyncio import AsyncEngine
    engines = instances(AsyncEngine)
    try:
        from redis.asyncio import Redis
        clients = instances(Redis)
    except ImportError:
        clients = 0
    print(json.dumps({"modules": names, "engines": engines, "celery_apps": apps, "redis": clients}))
    """
)


def test_every_module_imports_without_settings_or_side_effects() -> None:
    # An empty environment: a module that needs configuration to import would fail here.
    completed = subprocess.run(
        [sys.executable, "-c", PROBE], env={}, capture_output=True, text=True, timeout=120
    )

    assert completed.returncode == 0, completed.stderr
    report = json.loads(completed.stdout.strip().splitlines()[-1])
    assert "{{ cookiecutter.project_slug }}.container" in report["modules"]
    assert "{{ cookiecutter.project_slug }}.main" in report["modules"]
    assert report["engines"] == 0
    assert report["celery_apps"] == []
    assert report["redis"] == 0

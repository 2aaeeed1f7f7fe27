"""ORM models. Importing this package imports every module in it, which registers each table
on `Base.metadata` for Alembic's autogenerate.

Discovered rather than listed: a model missing from a hand-kept list would make autogenerate
write a migration that drops its table.
"""

import importlib
import pkgutil

from {{ cookiecutter.project_slug }}.models.base import Base

for _module in pkgutil.iter_modules(__path__):
    importlib.import_module(f"{__name__}.{_module.name}")

__all__ = ["Base"]

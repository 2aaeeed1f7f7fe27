"""Code generation for the development workflow: `scaffold resource NAME --fields ...` writes a
new resource through every layer, its migration and its tests, and registers it.

A development tool: nothing in the service imports it, and the CLI only on demand.
"""

from {{ cookiecutter.project_slug }}.scaffold.generate import Plan, scaffold_resource
from {{ cookiecutter.project_slug }}.scaffold.spec import FIELD_TYPES, ScaffoldError

__all__ = ["FIELD_TYPES", "Plan", "ScaffoldError", "scaffold_resource"]

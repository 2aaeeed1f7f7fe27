"""Version 1 of the public API."""

from fastapi import APIRouter

from {{ cookiecutter.project_slug }}.api.v1 import auth{% if cookiecutter.include_example_domain == 'y' %}, items{% endif %}, users

router = APIRouter(prefix="/api/v1")
router.include_router(auth.router)
router.include_router(users.router)
{%- if cookiecutter.include_example_domain == 'y' %}
router.include_router(items.router)
{%- endif %}

"""ORM models. Importing this package registers every table on `Base.metadata`."""

from {{ cookiecutter.project_slug }}.models.base import Base
{%- if cookiecutter.include_example_domain == 'y' %}
from {{ cookiecutter.project_slug }}.models.item import Item
{%- endif %}
from {{ cookiecutter.project_slug }}.models.user import User

__all__ = ["Base",{% if cookiecutter.include_example_domain == 'y' %} "Item",{% endif %} "User"]

"""ORM models: the registry. Importing this package registers every table on `Base.metadata`,
which Alembic's autogenerate compares with the database; add one line per new model."""

from {{ cookiecutter.project_slug }}.models.base import Base as Base
from {{ cookiecutter.project_slug }}.models.item import Item as Item
from {{ cookiecutter.project_slug }}.models.user import User as User

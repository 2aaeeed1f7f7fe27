"""What a scaffolded resource is made of: its names and its fields, checked before anything is
written. Every refusal is a `ScaffoldError` whose message is one line saying why."""

from __future__ import annotations

import builtins
import keyword
import re
import sys
from dataclasses import dataclass

NAME = re.compile(r"[a-z][a-z0-9]*(?:_[a-z0-9]+)*")
# Keeps `pk_<plural>` and `fk_<plural>_owner_id_users` readable; longer index names are shortened.
MAX_NAME_LENGTH = 30

# Reserved in PostgreSQL (and most other SQL databases): a table or module called `order` works
# only while every query quotes it, and hand-written SQL rarely does.
_SQL_RESERVED = """
    all analyse analyze and any array as asc asymmetric authorization binary both case cast check
    collate column concurrently constraint create cross current_catalog current_date current_role
    current_schema current_time current_timestamp current_user default deferrable desc distinct do
    else end except false fetch for foreign freeze from full grant group having ilike in initially
    inner intersect into is isnull join lateral leading left like limit localtime localtimestamp
    natural not notnull null offset on only or order outer overlaps placing primary references
    returning right select session_user similar some symmetric system_user table tablesample then
    to trailing true union unique user using variadic verbose when where window with
"""
SQL_RESERVED = frozenset(_SQL_RESERVED.split())

# Names the generated modules use themselves: a resource or field called so would shadow them.
GENERATED_NAMES = frozenset(
    {
        "actor", "admin", "base", "change", "changes", "client", "count", "data", "event",
        "events", "field", "grant", "granted", "grants", "headers", "listed", "original",
        "owner", "params", "query", "response", "router", "service", "session", "stranger",
        "total", "uow", "value", "version", "versions", "what",
    }
)  # fmt: skip

# Columns every resource has, and attributes of SQLAlchemy models and pydantic models.
RESERVED_FIELDS = frozenset(
    {
        "id", "owner_id", "version", "created_at", "updated_at", "metadata", "registry",
        "schema", "json", "dict", "copy", "construct", "validate", "fields",
        # Imported by the generated modules under these names.
        "annotations", "date", "datetime", "decimal", "uuid", "sa", "op",
    }
)  # fmt: skip


class ScaffoldError(Exception):
    """A resource that cannot be scaffolded; the message says why, in one line."""


@dataclass(frozen=True, slots=True)
class FieldType:
    """How one field type appears in each generated layer."""

    # `Mapped[...]` annotation and the SQLAlchemy type given to `mapped_column`.
    python: str
    column: str
    # The same type as Alembic renders it in a migration.
    migration: str
    # The request schema's type (with the column's limits) and the response schema's type.
    request: str
    response: str
    # Two valid values as JSON literals, for the generated tests.
    sample: str
    changed: str


FIELD_TYPES: dict[str, FieldType] = {
    "str": FieldType(
        python="str",
        column="String(200)",
        migration="sa.String(length=200)",
        request="Annotated[Text, Field(min_length=1, max_length=200)]",
        response="str",
        sample='"first {name}"',
        changed='"changed {name}"',
    ),
    "text": FieldType(
        python="str",
        column="Text",
        migration="sa.Text()",
        request="Annotated[Text, Field(max_length=10_000)]",
        response="str",
        sample='"A longer {name}."',
        changed='"A changed {name}."',
    ),
    "int": FieldType(
        python="int",
        column="Integer",
        migration="sa.Integer()",
        # The column is a 32-bit integer: anything larger would fail in the driver as a 500.
        request="Annotated[int, Field(ge=-(2**31), le=2**31 - 1)]",
        response="int",
        sample="42",
        changed="7",
    ),
    "decimal": FieldType(
        python="Decimal",
        column="Numeric(12, 2)",
        migration="sa.Numeric(precision=12, scale=2)",
        request="Annotated[Decimal, Field(max_digits=12, decimal_places=2)]",
        response="Decimal",
        # Sent and answered as strings: JSON numbers would lose precision in many clients.
        sample='"12.50"',
        changed='"7.25"',
    ),
    "bool": FieldType(
        python="bool",
        column="Boolean",
        migration="sa.Boolean()",
        request="bool",
        response="bool",
        sample="True",
        changed="False",
    ),
    "date": FieldType(
        python="date",
        column="Date",
        migration="sa.Date()",
        request="date",
        response="date",
        sample='"2030-01-31"',
        changed='"2031-06-15"',
    ),
    "datetime": FieldType(
        python="datetime",
        column="DateTime(timezone=True)",
        migration="sa.DateTime(timezone=True)",
        request="AwareUtcDatetime",
        response="UtcDatetime",
        sample='"2030-01-31T12:00:00+00:00"',
        changed='"2031-06-15T08:30:00+00:00"',
    ),
    "uuid": FieldType(
        python="uuid.UUID",
        column="Uuid",
        migration="sa.Uuid()",
        request="uuid.UUID",
        response="uuid.UUID",
        sample='"0b7a4c2e-5f1d-4e8a-9c3b-2d6f8e1a4b70"',
        changed='"5e2d9f40-8c1b-4a7e-b3d6-9f0a1c2e4d58"',
    ),
}


# Sorting by these needs an index per field; `text` is unbounded, `bool` and `uuid` order nothing.
SORTABLE_TYPES = frozenset({"str", "int", "decimal", "date", "datetime"})


@dataclass(frozen=True, slots=True)
class FieldSpec:
    name: str
    type_name: str
    optional: bool

    @property
    def type(self) -> FieldType:
        return FIELD_TYPES[self.type_name]

    @property
    def sample(self) -> str:
        return self.type.sample.format(name=self.name.replace("_", " "))

    @property
    def changed(self) -> str:
        return self.type.changed.format(name=self.name.replace("_", " "))


@dataclass(frozen=True, slots=True)
class ResourceSpec:
    """`product` / `products` / `Product`, with its fields in the order given."""

    name: str
    plural: str
    fields: tuple[FieldSpec, ...]

    @property
    def class_name(self) -> str:
        return "".join(part.capitalize() for part in self.name.split("_"))

    @property
    def url(self) -> str:
        return self.plural.replace("_", "-")

    @property
    def permission(self) -> str:
        return self.plural.upper()

    @property
    def constant(self) -> str:
        return self.name.upper()

    @property
    def sort_fields(self) -> tuple[str, ...]:
        """What a list may be sorted by: the timestamps, and every required field whose values
        order meaningfully (a NULL has no place in a keyset position)."""
        own = [f.name for f in self.fields if f.type_name in SORTABLE_TYPES and not f.optional]
        return ("created_at", "updated_at", *own)

    @property
    def search_field(self) -> FieldSpec | None:
        """The first text field: `q` searches it."""
        return next((f for f in self.fields if f.type_name in ("str", "text")), None)


def pluralise(name: str) -> str:
    """English plural of the last word, for the common cases; `--plural` covers the rest."""
    if re.search(r"(s|x|z|ch|sh)$", name):
        return name + "es"
    if re.search(r"[^aeiou]y$", name):
        return name[:-1] + "ies"
    return name + "s"


def _clash(name: str, what: str) -> str | None:
    """Why `name` cannot be used as `what`, or None."""
    if not NAME.fullmatch(name):
        return f"{what} {name!r} must be lower_snake_case ASCII, starting with a letter"
    if keyword.iskeyword(name) or keyword.issoftkeyword(name):
        return f"{what} {name!r} is a Python keyword"
    if name in SQL_RESERVED:
        return f"{what} {name!r} is an SQL reserved word; pick another (e.g. {name}_entry)"
    if name in dir(builtins):
        return f"{what} {name!r} would shadow the Python builtin of that name"
    return None


def check_resource_name(name: str, plural: str) -> None:
    if len(name) > MAX_NAME_LENGTH or len(plural) > MAX_NAME_LENGTH:
        raise ScaffoldError(f"resource name {name!r} is longer than {MAX_NAME_LENGTH} characters")
    for candidate, what in ((name, "resource name"), (plural, "plural")):
        reason = _clash(candidate, what)
        if reason:
            raise ScaffoldError(reason)
        if candidate in sys.stdlib_module_names:
            raise ScaffoldError(f"{what} {candidate!r} is a standard-library module name")
        if candidate in GENERATED_NAMES:
            raise ScaffoldError(f"{what} {candidate!r} is used by the generated code itself")
    if name == plural:
        raise ScaffoldError(f"resource name {name!r} and its plural must differ; pass --plural")


def parse_fields(text: str) -> tuple[FieldSpec, ...]:
    """`"title:str, price:decimal, due:date?"` as field specs; `?` makes a field optional."""
    fields: list[FieldSpec] = []
    for raw in text.split(","):
        entry = raw.strip()
        if not entry:
            continue
        name, separator, type_name = (part.strip() for part in entry.partition(":"))
        if not separator:
            raise ScaffoldError(f"field {entry!r} needs a type: name:type (e.g. {entry}:str)")
        optional = type_name.endswith("?")
        type_name = type_name.removesuffix("?").strip()
        if type_name not in FIELD_TYPES:
            known = ", ".join(FIELD_TYPES)
            raise ScaffoldError(f"field {name!r} has unknown type {type_name!r}; use {known}")
        if name in RESERVED_FIELDS or name.startswith("model_") or name in GENERATED_NAMES:
            raise ScaffoldError(f"field {name!r} is a name every resource uses already")
        reason = _clash(name, "field")
        if reason:
            raise ScaffoldError(reason)
        if any(field.name == name for field in fields):
            raise ScaffoldError(f"field {name!r} is given twice")
        fields.append(FieldSpec(name, type_name, optional))
    if not fields:
        raise ScaffoldError("give at least one field, e.g. --fields 'title:str'")
    return tuple(fields)

"""Write a new resource into the project and register it, or refuse without writing anything.

Everything is planned first (files rendered, registries edited in memory, every clash checked);
only a plan without a refusal is written. Registry edits are placed with the `ast` module, next
to the entries of the same kind, so they survive a user's own edits to those modules.
"""

from __future__ import annotations

import ast
import hashlib
import shutil
import subprocess
import sys
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from string import Template

from {{ cookiecutter.project_slug }}.db.migrate import alembic_config, next_revision_id
from {{ cookiecutter.project_slug }}.scaffold import templates
from {{ cookiecutter.project_slug }}.scaffold.spec import (
    FieldSpec,
    ResourceSpec,
    ScaffoldError,
    check_resource_name,
    parse_fields,
    pluralise,
)

PACKAGE = __name__.split(".")[0]
DEFAULT_FIELDS = "name:str"
# Modules of the package whose names a resource must not take, whatever layer they live in.
LAYERS = ("models", "schemas", "repositories", "services")
POSTGRES_MAX_IDENTIFIER = 63


@dataclass
class Plan:
    """Files to create and registry modules to rewrite, by path."""

    root: Path
    created: dict[Path, str] = field(default_factory=dict)
    updated: dict[Path, str] = field(default_factory=dict)

    def paths(self) -> list[Path]:
        return [*self.created, *self.updated]


def scaffold_resource(
    name: str,
    fields: str | None = None,
    *,
    plural: str | None = None,
    project_dir: Path | None = None,
) -> Plan:
    """Write the resource's modules, tests and migration and register it; return what changed."""
    root = project_dir or default_project_dir()
    plan = plan_resource(name, fields, plural=plural, root=root)
    for path, text in plan.created.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    for path, text in plan.updated.items():
        path.write_text(text, encoding="utf-8")
    format_files(root, created=list(plan.created), updated=list(plan.updated))
    return plan


def default_project_dir() -> Path:
    """The project this package was installed from in development (`uv sync` installs it
    editable), found from this file: `<project>/src/<package>/scaffold/generate.py`."""
    root = Path(__file__).resolve().parents[3]
    if not (root / "pyproject.toml").is_file() or not (root / "src" / PACKAGE).is_dir():
        raise ScaffoldError(
            f"no project source tree found above {Path(__file__).parent}; run this from a "
            "development checkout (`uv sync`) or pass --project-dir"
        )
    return root


def plan_resource(name: str, fields: str | None, *, plural: str | None, root: Path) -> Plan:
    spec = ResourceSpec(
        name=name,
        plural=plural or pluralise(name),
        fields=parse_fields(fields if fields is not None else DEFAULT_FIELDS),
    )
    check_resource_name(spec.name, spec.plural)
    package = root / "src" / PACKAGE
    if not package.is_dir():
        raise ScaffoldError(f"{package} does not exist; pass the project folder with --project-dir")
    check_module_clashes(spec, package)
    check_field_clashes(spec)

    plan = Plan(root)
    tests = root / "tests" / "integration"
    files = {
        package / "models" / f"{spec.name}.py": render_model(spec),
        package / "schemas" / f"{spec.name}.py": render_schemas(spec),
        package / "repositories" / f"{spec.name}.py": render_repository(spec),
        package / "services" / f"{spec.name}.py": render_service(spec),
        package / "api" / "v1" / f"{spec.plural}.py": render_router(spec),
        migration_path(spec, package): render_migration(spec, package),
        tests / "api" / "v1" / f"test_{spec.plural}.py": render_api_tests(spec),
        tests / "services" / f"test_{spec.name}.py": render_tests(templates.SERVICE_TESTS, spec),
        tests / "repositories" / f"test_{spec.name}.py": render_tests(
            templates.REPOSITORY_TESTS, spec
        ),
    }
    for path, text in files.items():
        if path.exists():
            raise ScaffoldError(f"{path.relative_to(root)} exists already; nothing was written")
        plan.created[path] = text
        # Test folders are packages (rootdir-relative imports); add the marker where missing.
        if path.is_relative_to(root / "tests"):
            for folder in path.relative_to(root).parents:
                marker = root / folder / "__init__.py"
                if folder.parts and not marker.exists():
                    plan.created.setdefault(marker, "")

    registries = {
        package / "container.py": register_in_container,
        package / "api" / "deps.py": register_in_deps,
        package / "api" / "v1" / "__init__.py": register_router,
        package / "core" / "permissions.py": register_permissions,
    }
    for path, register in registries.items():
        if not path.is_file():
            raise ScaffoldError(f"{path.relative_to(root)} is missing; cannot register {name}")
        source = path.read_text(encoding="utf-8")
        try:
            plan.updated[path] = register(source, spec)
        except ScaffoldError as exc:
            raise ScaffoldError(f"{path.relative_to(root)}: {exc}") from None
    return plan


def check_module_clashes(spec: ResourceSpec, package: Path) -> None:
    for own in (
        package / "models" / f"{spec.name}.py",
        package / "api" / "v1" / f"{spec.plural}.py",
    ):
        if own.exists():
            raise ScaffoldError(
                f"resource {spec.name!r} exists already ({own.relative_to(package.parent)})"
            )
    taken = {path.stem for path in package.iterdir()}
    for layer in LAYERS:
        taken |= {path.stem for path in (package / layer).glob("*.py")}
    taken |= {path.stem for path in (package / "api").glob("*.py")}
    taken |= {path.stem for path in (package / "api" / "v1").glob("*.py")}
    if spec.name in taken or spec.plural in taken or spec.name == PACKAGE:
        clash = spec.name if spec.name in taken else spec.plural
        raise ScaffoldError(f"{clash!r} is the name of an existing module of {PACKAGE}")
    for model in (package / "models").glob("*.py"):
        if f'__tablename__ = "{spec.plural}"' in model.read_text(encoding="utf-8"):
            raise ScaffoldError(f"table {spec.plural!r} is defined in models/{model.name}")


def check_field_clashes(spec: ResourceSpec) -> None:
    # The schema module defines one alias per constrained field, named after it.
    schema_names = {
        "Annotated", "AwareUtcDatetime", "BaseModel", "ConfigDict", "Decimal", "Field",
        "Omittable", "RequestModel", "Text", "UtcDatetime",
        f"{spec.class_name}Create", f"{spec.class_name}Update", f"{spec.class_name}Read",
    }  # fmt: skip
    for field_spec in spec.fields:
        if field_spec.name == spec.name or field_spec.name == spec.plural:
            raise ScaffoldError(f"field {field_spec.name!r} has the resource's own name")
        if alias_name(field_spec) in schema_names:
            raise ScaffoldError(f"field {field_spec.name!r} clashes with a name in the schemas")


def render(template: Template, spec: ResourceSpec, **values: str) -> str:
    human = spec.name.replace("_", " ")
    text: str = template.substitute(
        package=PACKAGE,
        name=spec.name,
        plural=spec.plural,
        Class=spec.class_name,
        Plural=spec.plural.replace("_", " ").capitalize(),
        PERMISSION=spec.permission,
        CONST=spec.constant,
        url=spec.url,
        human=human,
        human_plural=spec.plural.replace("_", " "),
        **values,
    )
    return text


def alias_name(field_spec: FieldSpec) -> str:
    return "".join(part.capitalize() for part in field_spec.name.split("_"))


def import_lines(stdlib: Iterable[str], modules: dict[str, set[str]]) -> str:
    """`import x` lines, then `from module import a, b` lines, in the order ruff sorts them."""
    lines = sorted(f"import {name}" for name in stdlib)
    lines += [
        f"from {module} import {', '.join(sorted(names))}"
        for module, names in sorted(modules.items())
        if names
    ]
    return "\n".join(lines)


def python_imports(types: Iterable[str]) -> tuple[set[str], dict[str, set[str]]]:
    """Standard-library imports for annotations such as `date`, `Decimal`, `uuid.UUID`."""
    plain = {"uuid"}
    modules: dict[str, set[str]] = {"datetime": set(), "decimal": set()}
    for name in types:
        if name in {"date", "datetime"}:
            modules["datetime"].add(name)
        elif name == "Decimal":
            modules["decimal"].add("Decimal")
    return plain, modules


def index_name(plural: str, columns: Iterable[str]) -> str:
    """`ix_<plural>_<columns>`, shortened with a hash where PostgreSQL would truncate it."""
    name = "_".join(["ix", plural, *columns])
    if len(name) <= POSTGRES_MAX_IDENTIFIER:
        return name
    digest = hashlib.sha256(name.encode()).hexdigest()[:8]
    return f"{name[: POSTGRES_MAX_IDENTIFIER - 9]}_{digest}"


def indexes(spec: ResourceSpec) -> list[tuple[str, list[str]]]:
    """One index per sort field, for one owner's rows and for everyone's, each ending in `id`
    like the keyset order does."""
    found = []
    for scope in (["owner_id"], []):
        for field_name in spec.sort_fields:
            columns = [*scope, field_name, "id"]
            found.append((index_name(spec.plural, columns), columns))
    return found


def render_model(spec: ResourceSpec) -> str:
    columns = []
    sqlalchemy = {"ForeignKey", "Index", "Integer"}
    for field_spec in spec.fields:
        kind = field_spec.type
        annotation = f"{kind.python} | None" if field_spec.optional else kind.python
        nullable = "" if field_spec.optional else ", nullable=False"
        columns.append(
            f"    {field_spec.name}: Mapped[{annotation}] = mapped_column({kind.column}{nullable})"
        )
        sqlalchemy.add(kind.column.split("(")[0])
    plain, modules = python_imports(field_spec.type.python for field_spec in spec.fields)
    modules["sqlalchemy"] = sqlalchemy
    imports = import_lines(plain, {k: v for k, v in modules.items() if k != "sqlalchemy"})
    orm = {"Mapped", "mapped_column"}
    imports += "\n\n" + import_lines([], {"sqlalchemy": sqlalchemy, "sqlalchemy.orm": orm})
    index_lines = [
        f"        Index({name!r}, {', '.join(repr(c) for c in cols)}),".replace("'", '"')
        for name, cols in indexes(spec)
    ]
    return render(
        templates.MODEL,
        spec,
        imports=imports,
        columns="\n".join(columns),
        indexes="\n".join(index_lines),
    )


def render_schemas(spec: ResourceSpec) -> str:
    aliases, create, update, read = [], [], [], []
    base = {"RequestModel", "UtcDatetime"}
    for field_spec in spec.fields:
        kind = field_spec.type
        request = kind.request
        if request.startswith("Annotated["):
            aliases.append(f"{alias_name(field_spec)} = {request}")
            request = alias_name(field_spec)
        if "Text" in kind.request:
            base.add("Text")
        if kind.request == "AwareUtcDatetime":
            base.add("AwareUtcDatetime")
        name = field_spec.name
        if field_spec.optional:
            create.append(f"    {name}: {request} | None = None")
            update.append(f"    {name}: {request} | None = None")
            read.append(f"    {name}: {kind.response} | None")
        else:
            create.append(f"    {name}: {request}")
            update.append(f"    {name}: Omittable[{request}] = None")
            base.add("Omittable")
            read.append(f"    {name}: {kind.response}")
    types = [field_spec.type.response for field_spec in spec.fields]
    plain, modules = python_imports(types)
    modules["typing"] = {"ClassVar"}
    if aliases:
        modules["typing"].add("Annotated")
    search = spec.search_field
    search_param = ""
    if search is not None:
        modules["typing"].add("Annotated")
        base.add("Text")
        search_param = render(templates.SEARCH_PARAM, spec, field=search.name) + "\n"
    text = render(
        templates.SCHEMAS,
        spec,
        imports=import_lines(plain, modules),
        base_imports=", ".join(sorted(base)),
        aliases="\n".join(aliases),
        create_fields="\n".join(create),
        update_fields="\n".join(update),
        read_fields="\n".join(read),
        sort_fields=", ".join(f'"{name}"' for name in spec.sort_fields),
        search_param=search_param,
    )
    if not aliases:
        text = text.replace(
            "# One definition per column, so a create and an update can never disagree on its "
            "limits.\n\n\n",
            "",
        )
    return text


def render_repository(spec: ResourceSpec) -> str:
    search = spec.search_field
    sortable = [f'    "{name}": {spec.class_name}.{name},' for name in spec.sort_fields]
    values = {
        "sortable": "\n".join(sortable),
        "base_imports": "Ordering, Repository",
        "search_filter": "",
        "search_clause": "",
    }
    if search is not None:
        values["base_imports"] = "Ordering, Repository, contains"
        values["search_filter"] = "    text: str | None = None"
        column = f"{spec.class_name}.{search.name}"
        values["search_clause"] = "\n".join(
            [
                "        if where.text:",
                f"            query = query.where(contains({column}, where.text))",
            ]
        )
    return render(templates.REPOSITORY, spec, **values)


def render_service(spec: ResourceSpec) -> str:
    search = "" if spec.search_field is None else "\n            text=params.q,"
    return render(templates.SERVICE, spec, search_argument=search)


def render_router(spec: ResourceSpec) -> str:
    return render(templates.ROUTER, spec)


def migration_path(spec: ResourceSpec, package: Path) -> Path:
    revision, _ = next_revision(spec, package)
    return package / "db" / "migrations" / "versions" / f"{revision}.py"


def next_revision(spec: ResourceSpec, package: Path) -> tuple[str, str]:
    """The new revision's id (`0003_products`: numbered like `db revision`) and its parent."""
    # Imported here: Alembic reads the revision files, which only this command needs.
    from alembic.script import ScriptDirectory

    config = alembic_config(script_location=str(package / "db" / "migrations"))
    script = ScriptDirectory.from_config(config)
    heads = script.get_heads()
    if len(heads) != 1:
        raise ScaffoldError(
            f"the migrations have {len(heads)} heads; merge them first (alembic merge heads)"
        )
    return next_revision_id(script, spec.plural), heads[0]


def render_migration(spec: ResourceSpec, package: Path) -> str:
    revision, down_revision = next_revision(spec, package)
    columns = [
        f'        sa.Column("{f.name}", {f.type.migration}, nullable={f.optional}),'
        for f in spec.fields
    ]
    create_indexes = [
        f'    op.create_index("{name}", "{spec.plural}", {list(columns)!r})'.replace("'", '"')
        for name, columns in indexes(spec)
    ]
    drop_indexes = [
        f'    op.drop_index("{name}", table_name="{spec.plural}")'
        for name, _ in reversed(indexes(spec))
    ]
    return render(
        templates.MIGRATION,
        spec,
        create_indexes="\n".join(create_indexes),
        drop_indexes="\n".join(drop_indexes),
        revision=revision,
        down_revision=down_revision,
        down_revision_literal=repr(down_revision).replace("'", '"'),
        date=datetime.now(UTC).date().isoformat(),
        columns="\n".join(columns),
    )


def payload(spec: ResourceSpec) -> str:
    return ", ".join(f'"{f.name}": {f.sample}' for f in spec.fields)


def check(field_spec: FieldSpec, literal: str) -> str:
    """An assertion that the response's `field_spec` holds the JSON value `literal`."""
    value = f'body["{field_spec.name}"]'
    if field_spec.type_name == "decimal":
        return f"        assert Decimal({value}) == Decimal({literal})"
    if field_spec.type_name == "datetime":
        parse = "datetime.fromisoformat"
        return f"        assert {parse}({value}) == {parse}({literal})"
    if field_spec.type_name == "bool":
        return f"        assert {value} is {literal}"
    return f"        assert {value} == {literal}"


def render_tests(template: Template, spec: ResourceSpec, **values: str) -> str:
    first = spec.fields[0]
    return render(
        template, spec, payload=payload(spec), first=first.name, changed=first.changed, **values
    )


def render_api_tests(spec: ResourceSpec) -> str:
    first = spec.fields[0]
    created = [check(f, f.sample) for f in spec.fields]
    updated = [check(f, f.changed if f is first else f.sample) for f in spec.fields]
    required = [f for f in spec.fields if not f.optional]
    required_test = (
        render(templates.REQUIRED_TEST, spec, field=required[0].name) if required else ""
    )
    modules: dict[str, set[str]] = {"datetime": set(), "decimal": set()}
    for f in spec.fields:
        if f.type_name == "datetime":
            modules["datetime"].add("datetime")
        if f.type_name == "decimal":
            modules["decimal"].add("Decimal")
    return render_tests(
        templates.API_TESTS,
        spec,
        imports=import_lines({"uuid"}, modules),
        created_checks="\n".join(created),
        updated_checks="\n".join(updated),
        required_test=required_test,
    )


# Registries --------------------------------------------------------------------------------


def _insert(source: str, after_line: int, text: str) -> str:
    """`source` with `text` (whole lines) inserted after its 1-based line `after_line`."""
    lines = source.splitlines(keepends=True)
    return "".join([*lines[:after_line], text, *lines[after_line:]])


def _parse(source: str) -> ast.Module:
    try:
        return ast.parse(source)
    except SyntaxError as exc:
        raise ScaffoldError(f"cannot parse it (line {exc.lineno}); fix it first") from None


def _add_imports(source: str, lines: list[str]) -> str:
    """`lines` added after the module's last import of this package (ruff sorts them after)."""
    tree = _parse(source)
    own = [
        node
        for node in tree.body
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith(f"{PACKAGE}.")
    ]
    if not own:
        raise ScaffoldError(f"no `from {PACKAGE}...` import to add the new ones beside")
    end = max(node.end_lineno or node.lineno for node in own)
    return _insert(source, end, "".join(f"{line}\n" for line in lines))


def _class(tree: ast.Module, name: str) -> ast.ClassDef:
    for node in tree.body:
        if isinstance(node, ast.ClassDef) and node.name == name:
            return node
    raise ScaffoldError(f"class {name} not found")


def register_in_container(source: str, spec: ResourceSpec) -> str:
    """A factory method on `Container`, after the last one."""
    container = _class(_parse(source), "Container")
    members = {
        node.target.id
        for node in container.body
        if isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name)
    } | {node.name for node in container.body if isinstance(node, ast.FunctionDef)}
    if spec.plural in members:
        raise ScaffoldError(f"Container already has a member named {spec.plural!r}")
    methods = [node for node in container.body if isinstance(node, ast.FunctionDef)]
    if not methods:
        raise ScaffoldError("Container has no factory methods to add one beside")
    end = methods[-1].end_lineno or methods[-1].lineno
    method = (
        f"\n    def {spec.plural}(self, uow: UnitOfWork) -> {spec.class_name}Service:\n"
        f"        return {spec.class_name}Service(\n"
        f"            uow,\n"
        f"            {spec.class_name}Repository(uow.session),\n"
        f"            self.events(uow),\n"
        f"            self.cursors,\n"
        f"            self.cache,\n"
        f"            self.audit(uow),\n"
        f"        )\n"
    )
    source = _insert(source, end, method)
    return _add_imports(
        source,
        [
            f"from {PACKAGE}.repositories.{spec.name} import {spec.class_name}Repository",
            f"from {PACKAGE}.services.{spec.name} import {spec.class_name}Service",
        ],
    )


def register_in_deps(source: str, spec: ResourceSpec) -> str:
    """`<Class>ServiceDep`, after the last `...ServiceDep` alias."""
    alias = f"{spec.class_name}ServiceDep"
    tree = _parse(source)
    aliases = [
        node
        for node in tree.body
        if isinstance(node, ast.Assign)
        and len(node.targets) == 1
        and isinstance(node.targets[0], ast.Name)
        and node.targets[0].id.endswith("ServiceDep")
    ]
    if any(isinstance(n.targets[0], ast.Name) and n.targets[0].id == alias for n in aliases):
        raise ScaffoldError(f"{alias} exists already")
    if not aliases:
        raise ScaffoldError("no `...ServiceDep` alias to add the new one beside")
    end = aliases[-1].end_lineno or aliases[-1].lineno
    line = (
        f"{alias} = Annotated[{spec.class_name}Service, "
        f"Depends(service(Container.{spec.plural}))]\n"
    )
    source = _insert(source, end, line)
    return _add_imports(
        source, [f"from {PACKAGE}.services.{spec.name} import {spec.class_name}Service"]
    )


def register_router(source: str, spec: ResourceSpec) -> str:
    """Include the router after the last `router.include_router(...)`."""
    tree = _parse(source)
    includes = [
        node
        for node in tree.body
        if isinstance(node, ast.Expr)
        and isinstance(node.value, ast.Call)
        and isinstance(node.value.func, ast.Attribute)
        and node.value.func.attr == "include_router"
    ]
    if not includes:
        raise ScaffoldError("no `router.include_router(...)` to add the new one beside")
    end = includes[-1].end_lineno or includes[-1].lineno
    source = _insert(source, end, f"router.include_router({spec.plural}_router)\n")
    return _add_imports(
        source, [f"from {PACKAGE}.api.v1.{spec.plural} import router as {spec.plural}_router"]
    )


def register_permissions(source: str, spec: ResourceSpec) -> str:
    """`<PLURAL>_READ/WRITE/ADMIN` permissions; plain users get read and write (admins get
    every permission already)."""
    tree = _parse(source)
    permission = _class(tree, "Permission")
    names = {
        target.id
        for node in permission.body
        if isinstance(node, ast.Assign)
        for target in node.targets
        if isinstance(target, ast.Name)
    }
    prefix = spec.permission
    human = spec.plural.replace("_", " ")
    if f"{prefix}_READ" in names:
        raise ScaffoldError(f"Permission.{prefix}_READ exists already")
    user_set = _user_permission_set(tree)
    last = user_set.elts[-1]
    # Edit from the bottom up, so the positions found above stay valid.
    lines = source.splitlines(keepends=True)
    row = (last.end_lineno or last.lineno) - 1
    column = last.end_col_offset or 0
    lines[row] = (
        lines[row][:column]
        + f", Permission.{prefix}_READ, Permission.{prefix}_WRITE"
        + lines[row][column:]
    )
    end = permission.body[-1].end_lineno or permission.body[-1].lineno
    members = (
        f'    {prefix}_READ = "{spec.plural}:read"\n'
        f'    {prefix}_WRITE = "{spec.plural}:write"\n'
        f'    {prefix}_ADMIN = "{spec.plural}:admin"\n'
        f'    """Read and change everyone\'s {human}, not only one\'s own."""\n'
    )
    return _insert("".join(lines), end, members)


def _user_permission_set(tree: ast.Module) -> ast.Set:
    """The `{...}` in `ROLE_PERMISSIONS = {Role.USER: frozenset({...}), ...}`."""
    for node in tree.body:
        if (
            isinstance(node, ast.AnnAssign | ast.Assign)
            and isinstance(node.value, ast.Dict)
            and "ROLE_PERMISSIONS" in ast.unparse(node)
        ):
            for key, value in zip(node.value.keys, node.value.values, strict=True):
                if (
                    key is not None
                    and ast.unparse(key) == "Role.USER"
                    and isinstance(value, ast.Call)
                    and value.args
                    and isinstance(value.args[0], ast.Set)
                ):
                    return value.args[0]
    raise ScaffoldError("`Role.USER: frozenset({...})` not found in ROLE_PERMISSIONS")


# Formatting --------------------------------------------------------------------------------


def ruff() -> str | None:
    beside_python = Path(sys.executable).with_name("ruff")
    return str(beside_python) if beside_python.is_file() else shutil.which("ruff")


def format_files(root: Path, *, created: list[Path], updated: list[Path]) -> None:
    """Sort imports and format with the project's ruff settings, so `make lint` stays clean.

    New files get every safe fix; the registries only import sorting, so a user's own code in
    them is not rewritten. Without ruff (a production image) the files are left as rendered.
    """
    executable = ruff()
    python = [str(path) for path in created if path.suffix == ".py" and path.stat().st_size]
    registries = [str(path) for path in updated]
    if executable is None:
        return
    for arguments in (
        # Formatted first, so the fixes see wrapped lines rather than long ones.
        ["format", "--quiet", *python, *registries],
        ["check", "--fix", "--quiet", *python],
        ["check", "--fix", "--quiet", "--select", "I", *registries],
        ["format", "--quiet", *python, *registries],
    ):
        # The executable and the paths are this module's own; no user text reaches a shell.
        subprocess.run([executable, *arguments], cwd=root, check=False)  # noqa: S603

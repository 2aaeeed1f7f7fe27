"""Helpers for the migration-lock tests: databases, migrator processes started from a barrier,
and a probe session that looks at (and tries) the lock from outside."""

from __future__ import annotations

import asyncio
import itertools
import json
import os
import signal
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import asyncpg

from {{ cookiecutter.project_slug }}.db import migrate
from tests.conftest import asyncpg_dsn, create_database, drop_database
from tests.integration.db.lock_scripts.steps import AUDIT_TABLE, BIG_TABLE, CONFIG_TABLE, SETUP_SQL
from tests.processes import SLUG, database_name, service_env

LOCK_SCRIPTS = str(Path(__file__).parent / "lock_scripts")
VERSION_TABLE = "lock_test_version"
REVISIONS = ("l1", "l2", "l3", "l4")
PROJECT_ROOT = Path(__file__).resolve().parents[3]
MIGRATOR_APP = f"{SLUG}-migrator:%"
# Limits on waits that only catch a hang. With every core busy, eight interpreters starting at
# once take many times as long as on an idle machine, so these are far above any normal run.
STARTUP_SECONDS = 120.0
FINISH_SECONDS = 180.0
OBSERVE_SECONDS = 60.0
# "Promptly", as opposed to never, or only once the faults tests' 60 s statement has ended: a
# freed lock or an interrupted migrator shows well within this, even on a loaded machine.
PROMPTLY_SECONDS = 30.0


def key_of(url: str, version_table: str = VERSION_TABLE) -> int:
    return migrate.lock_key(migrate.lock_name(url, version_table=version_table))


def key_halves(key: int) -> tuple[int, int]:
    """pg_locks shows a bigint advisory key as two oids: high half in classid, low in objid."""
    return (key >> 32) & 0xFFFFFFFF, key & 0xFFFFFFFF


async def connect(url: str, **server_settings: str) -> asyncpg.Connection:
    return await asyncpg.connect(asyncpg_dsn(url), server_settings=server_settings or None)


HOLDER_APPLICATION = "lock-test-holder"


@asynccontextmanager
async def lock_held_elsewhere(url: str) -> AsyncIterator[asyncpg.Connection]:
    """Another session holding the migration lock, as a running deploy would; closed on exit."""
    holder = await connect(url, application_name=HOLDER_APPLICATION)
    try:
        await holder.execute("SELECT pg_advisory_lock($1)", key_of(url))
        yield holder
    finally:
        await holder.close()


async def release(holder: asyncpg.Connection, url: str) -> None:
    await holder.execute("SELECT pg_advisory_unlock($1)", key_of(url))


@asynccontextmanager
async def lock_database(
    admin_url: str, *, owner: str | None = None, big_rows: int = 0
) -> AsyncIterator[str]:
    """A fresh database with the audit, config and big tables; dropped afterwards."""
    name = database_name()
    url = await create_database(admin_url, name)
    try:
        admin = await connect(url)
        try:
            for statement in SETUP_SQL:
                await admin.execute(statement)
            if big_rows:
                await admin.execute(
                    f"INSERT INTO {BIG_TABLE} SELECT i, md5(i::text)"  # noqa: S608
                    " FROM generate_series(1, $1) AS i",
                    big_rows,
                )
            if owner is not None:
                await admin.execute(f'ALTER DATABASE "{name}" OWNER TO "{owner}"')
                await admin.execute(f'ALTER SCHEMA public OWNER TO "{owner}"')
                for table in (AUDIT_TABLE, CONFIG_TABLE, BIG_TABLE):
                    await admin.execute(f'ALTER TABLE {table} OWNER TO "{owner}"')
        finally:
            await admin.close()
        yield url
    finally:
        await drop_database(admin_url, name)


async def configure(url: str, **values: float) -> None:
    """Set `lock_test_config` entries, e.g. `configure(url, **{"sleep:l2": 1.5})`."""
    connection = await connect(url)
    try:
        await connection.executemany(
            f"INSERT INTO {CONFIG_TABLE} VALUES ($1, $2)"  # noqa: S608
            " ON CONFLICT (name) DO UPDATE SET value = excluded.value",
            list(values.items()),
        )
    finally:
        await connection.close()


@dataclass(frozen=True)
class AuditRow:
    version_table: str
    revision: str
    backend_pid: int
    application_name: str
    started_at: datetime
    finished_at: datetime
    lock_timeout: str
    statement_timeout: str

    @property
    def os_pid(self) -> int:
        """The migrator's OS pid, the last part of `<slug>-migrator:<host>:<pid>`."""
        return int(self.application_name.rsplit(":", 1)[1])


async def audit_rows(url: str) -> list[AuditRow]:
    connection = await connect(url)
    try:
        rows = await connection.fetch(
            f"SELECT * FROM {AUDIT_TABLE} ORDER BY started_at"  # noqa: S608
        )
    finally:
        await connection.close()
    return [AuditRow(**dict(row)) for row in rows]


async def version_of(url: str, version_table: str = VERSION_TABLE) -> str | None:
    connection = await connect(url)
    try:
        if await connection.fetchval("SELECT to_regclass($1)", version_table) is None:
            return None
        version: str | None = await connection.fetchval(
            f"SELECT version_num FROM {version_table}"  # noqa: S608
        )
        return version
    finally:
        await connection.close()


async def table_exists(url: str, table: str) -> bool:
    connection = await connect(url)
    try:
        return await connection.fetchval("SELECT to_regclass($1)", table) is not None
    finally:
        await connection.close()


def assert_serial(rows: Sequence[AuditRow]) -> None:
    """No two audited revisions overlapped in time."""
    ordered = sorted(rows, key=lambda row: row.started_at)
    for before, after in itertools.pairwise(ordered):
        assert before.finished_at <= after.started_at, f"{before} overlaps {after}"


async def eventually(
    check: Callable[[], Awaitable[bool]], *, within: float, every: float = 0.02, what: str = ""
) -> float:
    """Poll `check` until it is true; returns the seconds it took (fails after `within`)."""
    started = time.monotonic()
    while not await check():
        elapsed = time.monotonic() - started
        assert elapsed < within, f"not within {within}s: {what}"
        await asyncio.sleep(every)
    return time.monotonic() - started


class Probe:
    """A plain session on the test database that watches the migrators and the lock."""

    def __init__(self, connection: asyncpg.Connection, key: int) -> None:
        self.connection = connection
        self.key = key
        self.hi, self.lo = key_halves(key)

    async def try_lock(self) -> bool:
        """Take the key if it is free (and give it back at once): is the lock free?"""
        if not await self.connection.fetchval("SELECT pg_try_advisory_lock($1)", self.key):
            return False
        await self.connection.fetchval("SELECT pg_advisory_unlock($1)", self.key)
        return True

    async def lock_rows(self) -> int:
        """Rows for the key in pg_locks, granted or waiting, from any session."""
        count: int = await self.connection.fetchval(
            "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND objsubid = 1"
            " AND classid::bigint = $1 AND objid::bigint = $2",
            self.hi,
            self.lo,
        )
        return count

    async def holder_pid(self) -> int | None:
        pid: int | None = await self.connection.fetchval(
            "SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND granted AND objsubid = 1"
            " AND classid::bigint = $1 AND objid::bigint = $2",
            self.hi,
            self.lo,
        )
        return pid

    async def migrator_sessions(self) -> list[dict[str, Any]]:
        """Migrator sessions on this database: backend pid, OS pid, state, idle seconds, query,
        and whether the session holds the key."""
        rows = await self.connection.fetch(
            "SELECT a.pid, a.application_name, a.state, a.query, a.wait_event_type,"
            " extract(epoch FROM clock_timestamp() - a.state_change)::float AS state_seconds,"
            " EXISTS (SELECT 1 FROM pg_locks l WHERE l.pid = a.pid AND l.granted"
            "   AND l.locktype = 'advisory' AND l.objsubid = 1"
            "   AND l.classid::bigint = $2 AND l.objid::bigint = $3) AS holds_lock"
            " FROM pg_stat_activity a WHERE a.datname = current_database()"
            " AND a.application_name LIKE $1",
            MIGRATOR_APP,
            self.hi,
            self.lo,
        )
        sessions = [dict(row) for row in rows]
        for session in sessions:
            session["os_pid"] = int(session["application_name"].rsplit(":", 1)[1])
        return sessions

    async def session_of(self, os_pid: int) -> dict[str, Any] | None:
        for session in await self.migrator_sessions():
            if session["os_pid"] == os_pid:
                return session
        return None

    async def running(self, os_pid: int, fragment: str) -> bool:
        """The migrator `os_pid` is executing a statement containing `fragment`."""
        session = await self.session_of(os_pid)
        return (
            session is not None
            and session["state"] == "active"
            and fragment.lower() in (session["query"] or "").lower()
        )


@asynccontextmanager
async def probe(url: str, version_table: str = VERSION_TABLE) -> AsyncIterator[Probe]:
    connection = await connect(url, application_name="lock-test-probe")
    try:
        yield Probe(connection, key_of(url, version_table))
    finally:
        await connection.close()


@dataclass
class Migrator:
    """A `python -m tests.migrator` process; it waits at the barrier until `go()`."""

    process: asyncio.subprocess.Process
    stdout_lines: list[str] = field(default_factory=list)
    stderr: str = ""
    result: dict[str, Any] | None = None

    @property
    def pid(self) -> int:
        return self.process.pid

    @property
    def returncode(self) -> int | None:
        return self.process.returncode

    async def read_line(self, within: float = STARTUP_SECONDS) -> str:
        assert self.process.stdout is not None
        async with asyncio.timeout(within):
            line = (await self.process.stdout.readline()).decode().strip()
        self.stdout_lines.append(line)
        return line

    async def go(self) -> None:
        assert self.process.stdin is not None
        self.process.stdin.write(b"go\n")
        await self.process.stdin.drain()

    def signal(self, signum: signal.Signals) -> None:
        self.process.send_signal(signum)

    async def finish(self, within: float = FINISH_SECONDS) -> int:
        """Wait for the exit; collects stderr and the final JSON line."""
        async with asyncio.timeout(within):
            stdout, stderr = await self.process.communicate()
        self.stderr = stderr.decode()
        self.stdout_lines.extend(stdout.decode().splitlines())
        for line in reversed(self.stdout_lines):
            if line.startswith("{"):
                self.result = json.loads(line)
                break
        assert self.process.returncode is not None
        return self.process.returncode

    @property
    def applied(self) -> list[str]:
        """Revisions this process logged applying (Alembic logs one line per step)."""
        return [
            line.split("-> ", 1)[1].split(",", 1)[0]
            for line in self.stderr.splitlines()
            if "Running upgrade" in line
        ]


def migrator_env(**variables: str | None) -> dict[str, str]:
    return service_env(PYTHONPATH=str(PROJECT_ROOT), **variables)


async def start_migrators(
    url: str,
    count: int = 1,
    *,
    version_table: str = VERSION_TABLE,
    options: Sequence[str] = (),
    env: dict[str, str] | None = None,
) -> list[Migrator]:
    """`count` migrator processes, each imported, configured and waiting at the barrier."""
    args = [
        sys.executable,
        "-m",
        "tests.migrator",
        "--url",
        url,
        "--script-location",
        LOCK_SCRIPTS,
        "--version-table",
        version_table,
        "--wait-for-go",
        *options,
    ]
    migrators = []
    for _ in range(count):
        process = await asyncio.create_subprocess_exec(
            *args,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            env=env or migrator_env(),
            cwd=tempfile.gettempdir(),
        )
        migrators.append(Migrator(process))
    try:
        lines = await asyncio.gather(*(migrator.read_line() for migrator in migrators))
    except BaseException:
        await stop_all(migrators)
        raise
    assert lines == ["ready"] * count, lines
    return migrators


async def go_all(migrators: Sequence[Migrator]) -> None:
    """Open the barrier: every migrator starts at the same moment."""
    await asyncio.gather(*(migrator.go() for migrator in migrators))


async def finish_all(migrators: Sequence[Migrator], within: float = FINISH_SECONDS) -> list[int]:
    return list(await asyncio.gather(*(migrator.finish(within) for migrator in migrators)))


async def stop_all(migrators: Sequence[Migrator]) -> None:
    """Kill what is still running (a failed test must not leave migrators behind)."""
    for migrator in migrators:
        if migrator.process.returncode is None:
            migrator.process.kill()
    for migrator in migrators:
        await migrator.process.wait()


async def wait_until_connected(prober: Probe, migrator: Migrator) -> None:
    """Until the migrator's session shows up (it is then polling for the lock)."""

    async def connected() -> bool:
        return await prober.session_of(migrator.pid) is not None

    await eventually(connected, within=OBSERVE_SECONDS, what="migrator connected")


@asynccontextmanager
async def migrators(url: str, count: int = 1, **kwargs: Any) -> AsyncIterator[list[Migrator]]:
    started = await start_migrators(url, count, **kwargs)
    try:
        yield started
    finally:
        await stop_all(started)


async def run_role_sql(admin_url: str, *statements: str) -> None:
    connection = await connect(admin_url)
    try:
        for statement in statements:
            await connection.execute(statement)
    finally:
        await connection.close()


@asynccontextmanager
async def scratch_role(admin_url: str, name: str, **settings: str) -> AsyncIterator[str]:
    """A login role of the test's own, with role-level settings; dropped afterwards."""
    role = f"{SLUG}_{name}_{os.getpid()}"
    statements = [f'CREATE ROLE "{role}" LOGIN']
    statements += [
        f"ALTER ROLE \"{role}\" SET {key} = '{value}'" for key, value in settings.items()
    ]
    await run_role_sql(admin_url, *statements)
    try:
        yield role
    finally:
        await run_role_sql(admin_url, f'DROP ROLE IF EXISTS "{role}"')

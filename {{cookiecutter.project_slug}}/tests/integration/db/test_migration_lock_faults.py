"""The migration lock when things go wrong: killed, terminated and signalled holders, role-level
timeouts, a lock held elsewhere, and a transaction-pooling PgBouncer in front of PostgreSQL."""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from filelock import FileLock
from sqlalchemy.engine import make_url

from tests.integration.db.lock_harness import (
    HOLDER_APPLICATION,
    OBSERVE_SECONDS,
    PROMPTLY_SECONDS,
    REVISIONS,
    VERSION_TABLE,
    Probe,
    audit_rows,
    configure,
    eventually,
    lock_database,
    lock_held_elsewhere,
    migrator_env,
    migrators,
    probe,
    release,
    scratch_role,
    table_exists,
    version_of,
    wait_until_connected,
)
from tests.processes import database_version, free_port, fresh_database, run_cli, service_env
from tests.services import ServiceUrls

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("migration-lock-faults")]


def as_role(url: str, role: str) -> str:
    return make_url(url).set(username=role).render_as_string(hide_password=False)


async def lock_freed_after(prober: Probe, *, within: float) -> float:
    """Seconds until the probe can take the key (polled every 20 ms)."""
    return await eventually(prober.try_lock, within=within, what="the lock to be free")


class TestKilledHolder:
    async def test_kill_9_between_revisions_frees_the_lock_and_the_next_run_completes(
        self, service_urls: ServiceUrls
    ) -> None:
        async with lock_database(service_urls.database) as url:
            env = migrator_env(LOCK_TEST_PAUSE_AFTER="l2")
            async with migrators(url, env=env) as (victim,), probe(url) as prober:
                await victim.go()
                assert await victim.read_line() == "paused after l2"
                assert await prober.holder_pid() is not None
                victim.signal(signal.SIGKILL)
                freed = await lock_freed_after(prober, within=PROMPTLY_SECONDS)
                assert await victim.finish() == -signal.SIGKILL
            async with migrators(url) as (successor,):
                await successor.go()
                code = await successor.finish()
            rows = await audit_rows(url)
            version = await version_of(url)

        assert freed < PROMPTLY_SECONDS
        assert code == 0, successor.stderr
        # The killed run was one transaction: all of it rolled back, so everything runs again.
        assert successor.applied == list(REVISIONS)
        assert [(row.revision, row.os_pid) for row in rows] == [
            (revision, successor.pid) for revision in REVISIONS
        ]
        assert version == REVISIONS[-1]

    async def test_kill_9_during_a_statement_frees_the_lock_and_the_next_run_completes(
        self, service_urls: ServiceUrls
    ) -> None:
        async with lock_database(service_urls.database) as url:
            await configure(url, **{"sleep:l2": 60})
            options = ("--transaction-per-migration",)
            async with migrators(url, options=options) as (victim,), probe(url) as prober:
                await victim.go()
                await eventually(
                    lambda: prober.running(victim.pid, "pg_sleep"),
                    within=OBSERVE_SECONDS,
                    what="in l2",
                )
                victim.signal(signal.SIGKILL)
                # The server is busy in pg_sleep: only the connection check notices the death.
                freed = await lock_freed_after(prober, within=PROMPTLY_SECONDS)
                assert await victim.finish() == -signal.SIGKILL
            await configure(url, **{"sleep:l2": 0})
            async with migrators(url, options=options) as (successor,):
                await successor.go()
                code = await successor.finish()
            rows = await audit_rows(url)
            version = await version_of(url)

        assert freed < PROMPTLY_SECONDS
        assert code == 0, successor.stderr
        # l1 was committed before the kill; l2 was rolled back and runs again.
        assert successor.applied == list(REVISIONS[1:])
        assert [(row.revision, row.os_pid) for row in rows] == [
            ("l1", victim.pid),
            *((revision, successor.pid) for revision in REVISIONS[1:]),
        ]
        assert version == REVISIONS[-1]


async def test_sigterm_mid_revision_rolls_back_releases_and_exits_non_zero(
    service_urls: ServiceUrls,
) -> None:
    async with lock_database(service_urls.database) as url:
        await configure(url, **{"sleep:l2": 60})
        options = ("--transaction-per-migration",)
        async with migrators(url, options=options) as (migrator,), probe(url) as prober:
            await migrator.go()
            await eventually(
                lambda: prober.running(migrator.pid, "pg_sleep"),
                within=OBSERVE_SECONDS,
                what="in l2",
            )
            signalled = time.monotonic()
            migrator.signal(signal.SIGTERM)
            code = await migrator.finish(within=PROMPTLY_SECONDS)
            exited_after = time.monotonic() - signalled

            async def released() -> bool:
                return (
                    await prober.lock_rows() == 0
                    and await prober.session_of(migrator.pid) is None
                    and await prober.try_lock()
                )

            freed_after = await eventually(
                released, within=PROMPTLY_SECONDS, what="lock and session gone"
            )
        rows = await audit_rows(url)
        version = await version_of(url)
        second_table = await table_exists(url, f"{VERSION_TABLE}_two")

    assert code == 8, migrator.stderr
    assert "interrupted" in migrator.stderr
    # Well before the 60 s statement would have ended by itself.
    assert exited_after < PROMPTLY_SECONDS
    assert freed_after < PROMPTLY_SECONDS
    assert [row.revision for row in rows] == ["l1"]
    assert version == "l1"
    assert not second_table


class TestLostLock:
    async def test_terminated_lock_session_aborts_before_the_next_revision(
        self, service_urls: ServiceUrls
    ) -> None:
        async with (
            scratch_role(
                service_urls.database,
                "idle",
                idle_session_timeout="300ms",
                idle_in_transaction_session_timeout="300ms",
            ) as role,
            lock_database(service_urls.database, owner=role) as url,
        ):
            await configure(url, **{"sleep:l2": 60})
            options = ("--transaction-per-migration",)
            async with (
                migrators(as_role(url, role), options=options) as (migrator,),
                probe(url) as prober,
            ):
                await migrator.go()
                await eventually(
                    lambda: prober.running(migrator.pid, "pg_sleep"),
                    within=OBSERVE_SECONDS,
                    what="in l2",
                )
                session = await prober.session_of(migrator.pid)
                assert session is not None
                await prober.connection.execute("SELECT pg_terminate_backend($1)", session["pid"])
                code = await migrator.finish(within=PROMPTLY_SECONDS)
                lock_rows = await prober.lock_rows()
            rows = await audit_rows(url)
            version = await version_of(url)

        assert code == 6, migrator.stderr
        assert "lost" in migrator.stderr
        assert "Traceback" not in migrator.stderr
        assert lock_rows == 0
        assert [row.revision for row in rows] == ["l1"]
        assert version == "l1"

    async def test_role_idle_session_timeout_does_not_end_a_waiting_migrator(
        self, service_urls: ServiceUrls
    ) -> None:
        async with (
            scratch_role(
                service_urls.database,
                "idle",
                idle_session_timeout="300ms",
                idle_in_transaction_session_timeout="300ms",
            ) as role,
            lock_database(service_urls.database, owner=role) as url,
        ):
            async with (
                lock_held_elsewhere(url) as holder,
                migrators(as_role(url, role)) as (migrator,),
                probe(url) as prober,
            ):
                await migrator.go()
                await wait_until_connected(prober, migrator)
                # Long enough for the polling back-off to idle past the role's 300 ms.
                await asyncio.sleep(1.5)
                await release(holder, url)
                code = await migrator.finish()
            rows = await audit_rows(url)

        assert code == 0, migrator.stderr
        assert [row.revision for row in rows] == list(REVISIONS)
        assert {row.os_pid for row in rows} == {migrator.pid}


async def test_lock_timeout_exits_3_on_time_naming_the_holder(service_urls: ServiceUrls) -> None:
    async with lock_database(service_urls.database) as url:
        async with (
            lock_held_elsewhere(url) as holder,
            migrators(url, options=("--lock-timeout", "3")) as (migrator,),
        ):
            holder_pid = await holder.fetchval("SELECT pg_backend_pid()")
            await migrator.go()
            code = await migrator.finish()
        version = await version_of(url)

    assert code == 3, migrator.stderr
    assert migrator.result is not None
    # At least the timeout (measured by the migrator itself), and the timeout did end the wait.
    assert 2.5 <= migrator.result["seconds"] < 3 + PROMPTLY_SECONDS, migrator.result
    assert f"pid {holder_pid}" in migrator.stderr
    assert HOLDER_APPLICATION in migrator.stderr
    assert version is None


async def test_role_level_timeouts_neither_break_acquisition_nor_reach_the_migrations(
    service_urls: ServiceUrls,
) -> None:
    async with (
        scratch_role(
            service_urls.database, "timeouts", lock_timeout="200ms", statement_timeout="2s"
        ) as role,
        lock_database(service_urls.database, owner=role) as url,
    ):
        options = ("--statement-timeout", "30", "--ddl-lock-timeout", "5")
        async with (
            lock_held_elsewhere(url) as holder,
            migrators(as_role(url, role), options=options) as (migrator,),
            probe(url) as prober,
        ):
            await migrator.go()
            await wait_until_connected(prober, migrator)
            # Longer than the role's statement_timeout: a blocking wait would be cancelled.
            await asyncio.sleep(2.3)
            await release(holder, url)
            code = await migrator.finish()
        rows = await audit_rows(url)

    assert code == 0, migrator.stderr
    assert [row.revision for row in rows] == list(REVISIONS)
    assert {(row.lock_timeout, row.statement_timeout) for row in rows} == {("5s", "30s")}


# PgBouncer in transaction mode, on loopback, installed when missing.

PGBOUNCER = "/usr/sbin/pgbouncer"


def _pgbouncer_binary() -> str | None:
    found = shutil.which("pgbouncer")
    if found is None and Path(PGBOUNCER).exists():
        found = PGBOUNCER
    return found


def _apt_get(*args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    # CI runners that are not root have password-less sudo; elsewhere the error says what to do.
    sudo = ["sudo", "-n"] if os.geteuid() != 0 and shutil.which("sudo") else []
    return subprocess.run(
        [*sudo, "apt-get", *args],
        capture_output=True,
        text=True,
        env=env,
        check=False,
        timeout=600,
    )


@pytest.fixture(scope="session")
def pgbouncer_binary() -> str:
    """PgBouncer's executable, installed with apt when it is not there (never skipped)."""
    with FileLock(Path(tempfile.gettempdir()) / "migration-lock-tests-pgbouncer.lock"):
        found = _pgbouncer_binary()
        if found is None:
            installed = _apt_get("install", "-y", "pgbouncer")
            if installed.returncode != 0:
                _apt_get("update")
                installed = _apt_get("install", "-y", "pgbouncer")
            found = _pgbouncer_binary()
            assert found is not None, (
                "PgBouncer is needed and could not be installed; install it "
                f"(apt-get install pgbouncer) and rerun:\n{installed.stderr}"
            )
    return found


@pytest.fixture
def pgbouncer_url(pgbouncer_binary: str, service_urls: ServiceUrls) -> Iterator[str]:
    """A PgBouncer of the test's own, in transaction mode, in front of the test PostgreSQL."""
    server = make_url(service_urls.database)
    port = free_port()
    directory = Path(tempfile.mkdtemp(prefix="pgbouncer-"))
    directory.chmod(0o755)  # read by the unprivileged user it switches to
    userlist = directory / "userlist.txt"
    userlist.write_text(f'"{server.username}" ""\n')
    config = directory / "pgbouncer.ini"
    config.write_text(
        "[databases]\n"
        f"* = host={server.host} port={server.port or 5432}\n"
        "[pgbouncer]\n"
        f"listen_addr = 127.0.0.1\nlisten_port = {port}\nunix_socket_dir =\n"
        f"auth_type = trust\nauth_file = {userlist}\npool_mode = transaction\n"
    )
    for path in (userlist, config):
        path.chmod(0o644)
    command = [pgbouncer_binary, str(config)]
    if os.geteuid() == 0:
        command[1:1] = ["-u", "postgres"]  # it refuses to run as root
    process = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL
    )
    try:
        deadline = time.monotonic() + 15
        while True:
            assert process.poll() is None, process.communicate()[0].decode()
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
                break
            except OSError:
                assert time.monotonic() < deadline, "pgbouncer did not start listening"
                time.sleep(0.05)
        yield server.set(host="127.0.0.1", port=port).render_as_string(hide_password=False)
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        if process.stdout is not None:
            process.stdout.close()
        shutil.rmtree(directory, ignore_errors=True)


def through(pgbouncer_url: str, direct_url: str) -> str:
    """`direct_url`'s database, reached through the pooler."""
    pooler = make_url(pgbouncer_url)
    return (
        make_url(direct_url)
        .set(host=pooler.host, port=pooler.port)
        .render_as_string(hide_password=False)
    )


async def test_transaction_pooling_pgbouncer_is_refused_without_leaving_a_lock(
    pgbouncer_url: str, service_urls: ServiceUrls
) -> None:
    async with fresh_database(service_urls.database) as url:
        pooled = through(pgbouncer_url, url)
        # Twice: the second run meets server sessions the first one left in the pool.
        refusals = [
            await run_cli(
                "db", "upgrade", "--lock-timeout", "5", env=service_env(DATABASE_URL=pooled)
            )
            for _ in range(2)
        ]
        async with probe(url, version_table="alembic_version") as prober:
            advisory_rows = await prober.connection.fetchval(
                "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory'"
                " AND database = (SELECT oid FROM pg_database WHERE datname = current_database())"
            )
        version_after_refusals = await database_version(url)
        # The way out the message gives: a direct URL for migrations.
        direct = await run_cli(
            "db", "upgrade", env=service_env(DATABASE_URL=pooled, MIGRATION_DATABASE_URL=url)
        )
        version = await database_version(url)

    for refused in refusals:
        assert refused.returncode == 7, refused.stderr
        assert "MIGRATION_DATABASE_URL" in refused.stderr
        assert "Traceback" not in refused.stderr
    assert advisory_rows == 0
    assert version_after_refusals is None
    assert direct.returncode == 0, direct.stderr
    assert version is not None

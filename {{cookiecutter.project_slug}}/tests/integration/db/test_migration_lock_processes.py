"""The migration lock under concurrency: separate migrator processes started from a barrier."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from tests.integration.db.lock_harness import (
    OBSERVE_SECONDS,
    REVISIONS,
    Probe,
    assert_serial,
    audit_rows,
    configure,
    connect,
    eventually,
    finish_all,
    go_all,
    lock_database,
    migrators,
    probe,
    version_of,
)
from tests.integration.db.lock_scripts.steps import BIG_TABLE
from tests.services import ServiceUrls

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("migration-lock")]


async def test_eight_processes_apply_each_revision_exactly_once(service_urls: ServiceUrls) -> None:
    async with lock_database(service_urls.database) as url:
        # A slow revision keeps the winner busy while the other seven poll for the lock.
        await configure(url, **{"sleep:l2": 0.5})
        async with migrators(url, 8, options=("--lock-timeout", "60")) as started:
            await go_all(started)
            codes = await finish_all(started)
        rows = await audit_rows(url)
        version = await version_of(url)

    assert codes == [0] * 8, [migrator.stderr for migrator in started]
    assert [row.revision for row in rows] == list(REVISIONS)
    assert_serial(rows)
    assert version == REVISIONS[-1]
    winners = [migrator for migrator in started if migrator.applied]
    assert len(winners) == 1, [migrator.applied for migrator in started]
    assert winners[0].applied == list(REVISIONS)
    assert {row.os_pid for row in rows} == {winners[0].pid}


async def test_a_migrator_that_waited_runs_zero_revisions(service_urls: ServiceUrls) -> None:
    async with lock_database(service_urls.database) as url:
        await configure(url, **{"sleep:l2": 1.0})
        async with migrators(url, 2) as (first, second), probe(url) as watcher:
            await first.go()
            await eventually(
                lambda: watcher.running(first.pid, "pg_sleep"),
                within=OBSERVE_SECONDS,
                what="first in l2",
            )
            await second.go()
            codes = await finish_all([first, second])
        rows = await audit_rows(url)

    assert codes == [0, 0], [first.stderr, second.stderr]
    assert first.applied == list(REVISIONS)
    assert second.applied == [], second.stderr
    assert {row.os_pid for row in rows} == {first.pid}
    assert "migration lock acquired" in second.stderr
    assert "database already at head; nothing to apply" in second.stderr


async def _sample_migrators(watcher: Probe, samples: list[dict[str, Any]]) -> None:
    while True:
        samples.extend(await watcher.migrator_sessions())
        await asyncio.sleep(0.02)


async def test_a_migrator_arriving_during_create_index_concurrently_does_not_deadlock(
    service_urls: ServiceUrls,
) -> None:
    samples: list[dict[str, Any]] = []
    async with lock_database(service_urls.database, big_rows=100_000) as url:
        # An open writer on the big table holds CREATE INDEX CONCURRENTLY in its first wait, so
        # the second migrator arrives while the index build is certainly in progress.
        gate = await connect(url)
        try:
            transaction = gate.transaction()
            await transaction.start()
            await gate.execute(f"LOCK TABLE {BIG_TABLE} IN ROW EXCLUSIVE MODE")
            async with (
                migrators(url, 2) as (first, second),
                probe(url) as watcher,
                probe(url) as sampler_session,
            ):
                sampler = asyncio.ensure_future(_sample_migrators(sampler_session, samples))
                try:
                    await first.go()
                    await eventually(
                        lambda: watcher.running(first.pid, "CREATE INDEX CONCURRENTLY"),
                        within=OBSERVE_SECONDS,
                        what="first migrator in CREATE INDEX CONCURRENTLY",
                    )
                    await second.go()

                    async def second_connected() -> bool:
                        return await watcher.session_of(second.pid) is not None

                    await eventually(
                        second_connected, within=OBSERVE_SECONDS, what="second migrator connected"
                    )
                    await asyncio.sleep(0.5)  # the second one polls while the index is pending
                    assert await watcher.running(first.pid, "CREATE INDEX CONCURRENTLY")
                    await transaction.commit()
                    codes = await finish_all([first, second])
                finally:
                    sampler.cancel()
                    await asyncio.gather(sampler, return_exceptions=True)
                await watcher.connection.execute("SELECT pg_stat_clear_snapshot()")
                deadlocks = await watcher.connection.fetchval(
                    "SELECT deadlocks FROM pg_stat_database WHERE datname = current_database()"
                )
                valid = await watcher.connection.fetchval(
                    "SELECT indisvalid FROM pg_index WHERE indexrelid = $1::regclass",
                    "ix_lock_test_version_big",
                )
        finally:
            await gate.close()
        rows = await audit_rows(url)

    assert codes == [0, 0], [first.stderr, second.stderr]
    assert valid is True
    assert deadlocks == 0
    assert first.applied == list(REVISIONS)
    assert second.applied == []
    assert {row.os_pid for row in rows} == {first.pid}
    assert any(sample["os_pid"] == second.pid for sample in samples)
    # A migrator that does not hold the lock never sits in an open transaction.
    lingering = [
        sample
        for sample in samples
        if sample["state"] == "idle in transaction"
        and not sample["holds_lock"]
        and sample["state_seconds"] > 0.25
    ]
    assert lingering == []


async def test_a_probe_never_gets_the_lock_while_a_run_is_in_progress(
    service_urls: ServiceUrls,
) -> None:
    async with lock_database(service_urls.database) as url:
        await configure(url, **{"sleep:l2": 1.0})
        async with migrators(url) as (migrator,), probe(url) as prober:

            async def held_by_migrator() -> bool:
                session = await prober.session_of(migrator.pid)
                return session is not None and session["holds_lock"]

            await migrator.go()
            await eventually(
                held_by_migrator, within=OBSERVE_SECONDS, what="migrator holding the lock"
            )
            polls = 0
            while not await prober.try_lock():
                polls += 1
                await asyncio.sleep(0.02)
            # The first time the probe got the key, the run had committed its last revision.
            version_when_free = await version_of(url)
            code = await migrator.finish()

    assert code == 0, migrator.stderr
    assert version_when_free == REVISIONS[-1]
    assert polls >= 25, f"only {polls} polls while the run held the lock"


async def test_version_tables_lock_separately(service_urls: ServiceUrls) -> None:
    async with lock_database(service_urls.database) as url:
        await configure(url, **{"sleep:l2": 1.0})
        options = ("--target", "l2")
        async with (
            migrators(url, 2, version_table="lock_test_a", options=options) as same_table,
            migrators(url, 1, version_table="lock_test_b", options=options) as other_table,
        ):
            everyone = [*same_table, *other_table]
            await go_all(everyone)
            codes = await finish_all(everyone)
        rows = await audit_rows(url)

    assert codes == [0] * 3, [migrator.stderr for migrator in everyone]
    by_table = {
        table: [row for row in rows if row.version_table == table]
        for table in ("lock_test_a", "lock_test_b")
    }
    for table, table_rows in by_table.items():
        assert [row.revision for row in table_rows] == ["l1", "l2"], table
        assert_serial(table_rows)
    # The same version table serialises: one of the two applied everything, the other nothing.
    assert sorted(len(migrator.applied) for migrator in same_table) == [0, 2]
    # Different version tables do not wait for each other: their slow revisions overlap.
    slow_a, slow_b = (
        next(row for row in table_rows if row.revision == "l2") for table_rows in by_table.values()
    )
    assert slow_a.started_at < slow_b.finished_at
    assert slow_b.started_at < slow_a.finished_at

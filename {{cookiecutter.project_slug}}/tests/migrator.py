"""One migrator process, as a replica or a deploy job would run it, for the migration-lock tests.

    python -m tests.migrator --url URL --script-location DIR --version-table TABLE
        [--target REV] [--transaction-per-migration] [--lock-timeout S]
        [--statement-timeout S] [--ddl-lock-timeout S] [--wait-for-go]

With `--wait-for-go` it prints `ready` once imported and configured, then starts when a line
arrives on stdin: the tests' barrier. It ends by printing one JSON line (exit code and seconds spent
in `run_locked`) and exits with the migration error's exit code (0 on success). Settings not given
here come from the environment.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from collections.abc import Sequence

from {{ cookiecutter.project_slug }}.core.config import load_settings
from {{ cookiecutter.project_slug }}.core.logging import configure_logging
from {{ cookiecutter.project_slug }}.db import migrate


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m tests.migrator")
    parser.add_argument("--url", required=True)
    parser.add_argument("--script-location", required=True)
    parser.add_argument("--version-table", required=True)
    parser.add_argument("--target", default="head")
    parser.add_argument("--transaction-per-migration", action="store_true")
    parser.add_argument("--lock-timeout", type=float, default=None)
    parser.add_argument("--statement-timeout", type=float, default=None)
    parser.add_argument("--ddl-lock-timeout", type=float, default=None)
    parser.add_argument("--wait-for-go", action="store_true")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    settings = load_settings(
        database_url=args.url,
        migration_statement_timeout_seconds=args.statement_timeout,
        migration_ddl_lock_timeout_seconds=args.ddl_lock_timeout,
    )
    configure_logging(settings.log_level, settings.effective_log_format)
    if args.wait_for_go:
        print("ready", flush=True)  # noqa: T201
        sys.stdin.readline()
    started = time.monotonic()
    exit_code = 0
    try:
        asyncio.run(
            migrate.upgrade(
                settings,
                args.target,
                lock_timeout=args.lock_timeout,
                script_location=args.script_location,
                version_table=args.version_table,
                transaction_per_migration=args.transaction_per_migration,
            )
        )
    except migrate.MigrationError as exc:
        print(f"error: {exc}", file=sys.stderr, flush=True)  # noqa: T201
        exit_code = exc.exit_code
    result = {"exit_code": exit_code, "seconds": round(time.monotonic() - started, 3)}
    print(json.dumps(result), flush=True)  # noqa: T201
    return exit_code


if __name__ == "__main__":
    sys.exit(main())

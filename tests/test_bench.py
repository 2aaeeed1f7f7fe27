"""`make bench` and `make bench-breakdown` run end to end on a default bake, in their short mode.

The benchmark reports and never fails a build, so this checks that every figure is produced,
not what the figures are. With wrk missing the bench falls back to oha or its Python client;
either is accepted.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from tests.support import Bake, Services, child_environment, run

SCENARIOS = ("GET /health/live", "GET /api/v1/items/{id} (auth)", "POST /api/v1/items (auth)")


@pytest.mark.slow
def test_make_bench_and_the_breakdown_run_end_to_end(bake: Bake, services: Services) -> None:
    project = bake()
    run(["uv", "sync"], cwd=project)
    env = child_environment(
        TEST_DATABASE_URL=services.database_url,
        TEST_REDIS_URL=services.redis_url,
        BENCH_DURATION="1",
        BENCH_ROUNDS="1",
    )

    output = run(["make", "bench"], cwd=project, env=env, timeout=900)

    assert re.search(r"^load: (wrk|oha|python \(httpx\))", output, re.MULTILINE), output
    for scenario in SCENARIOS:
        for connections in (64, 256):
            assert re.search(rf"^{re.escape(scenario)} +{connections} full ", output, re.M), output
    assert output.count("full/bare") >= 2 * len(SCENARIOS)
    assert "cold start, spawn to first 200" in output
    assert "RSS after the run: full" in output
    document = json.loads(_json_path(output).read_text())
    assert len(document["rows"]) == 2 * 2 * len(SCENARIOS)
    # A one-second round on a busy machine may answer nothing at 256 connections: the figures
    # must be there, not large. Over the whole run, requests were answered.
    for row in document["rows"]:
        assert row["rps_median"] >= 0, row
        assert len(row["rounds"]) == 1, row
    assert sum(row["rounds"][0]["requests"] for row in document["rows"]) > 0
    assert set(document["cold_start_seconds"]) == {"full", "bare"}
    # Read from each server's own metrics: a number, whatever the load did to the limiter.
    assert "rate-limit checks admitted without Redis (failed open): full " in output
    assert all(isinstance(n, int) for n in document["rate_limit_failed_open"].values()), document

    output = run(["make", "bench-breakdown"], cwd=project, env=env, timeout=900)

    assert "per-layer breakdown: GET /api/v1/items/{id} (auth)" in output
    for layer in ("bare", "+ request context", "+ dependencies", "+ metrics", "service"):
        assert re.search(rf"^{re.escape(layer)} .* +\d+\.\d +", output, re.MULTILINE), output
    breakdown = json.loads(_json_path(output).read_text())
    # Bare, the twelve layers added one at a time, and the service's own create_app.
    assert len(breakdown["rows"]) == 14, breakdown["rows"]


def _json_path(output: str) -> Path:
    match = re.search(r"^JSON: (.+)$", output, re.MULTILINE)
    assert match, output
    return Path(match.group(1))

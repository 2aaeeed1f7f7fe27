"""The run: database, servers, setup through the API, measurements, table and JSON."""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import secrets
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg
import httpx
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy.engine import make_url

from {{ cookiecutter.project_slug }}.core.config import Settings
from tests.bench.bare import HEALTH_PATH
from tests.bench.load import (
    CLIENT_BOUND_CPU,
    Generator,
    Measurement,
    PythonClient,
    Target,
    choose,
    generate,
)
from tests.services import ServicesUnavailableError, resolve

SLUG = "{{ cookiecutter.project_slug }}"
PROJECT_ROOT = Path(__file__).resolve().parents[2]
RESULTS_DIR = PROJECT_ROOT / ".benchmarks"
STARTUP_TIMEOUT_SECONDS = 60.0
{%- if cookiecutter.use_redis == 'y' %}
BACKENDS = "PostgreSQL and Redis"
REQUIRED_SERVICES = ("TEST_DATABASE_URL", "TEST_REDIS_URL")
{%- else %}
BACKENDS = "PostgreSQL"
REQUIRED_SERVICES = ("TEST_DATABASE_URL",)
{%- endif %}
EXAMPLE_DOMAIN = {{ 'True' if cookiecutter.include_example_domain == 'y' else 'False' }}
# Every request comes from one address, so a per-client limit would turn the run into a
# benchmark of 429 answers; the limit is raised, everything else stays at production values.
UNLIMITED_RATE = "100000000/minute"
COLD_STARTS = 3


class BenchError(RuntimeError):
    """The benchmark could not run; the message says which step failed."""


STARTED = time.monotonic()


def progress(message: str) -> None:
    sys.stderr.write(f"bench [{time.monotonic() - STARTED:6.1f}s]: {message}\n")
    sys.stderr.flush()


# --------------------------------------------------------------------------------------------
# Processes: pinned servers, their CPU time and memory from /proc.


def cpu_seconds(pid: int) -> float | None:
    """User plus system CPU time of a process (all its threads), from /proc/<pid>/stat."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # The command name may hold spaces; the fields after it start with the state (field 3).
    fields = text.rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def rss_mb(pid: int) -> float | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return None


def unchecked_requests(server: Server) -> int | None:
    """How many checks the rate limiter admitted without its store (failed open), from the
    server's own metrics: requests the figures include but the limiter never counted."""
    try:
        text = httpx.get(f"{server.base_url}/metrics", timeout=10, trust_env=False).text
    except httpx.HTTPError:
        return None
    return sum(
        int(sample.value)
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == "rate_limit_decisions_total" and sample.labels.get("decision") == "error"
    )


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class Server:
    name: str
    process: subprocess.Popen[bytes]
    log_path: Path
    base_url: str

    @property
    def pid(self) -> int:
        return self.process.pid

    def log_tail(self, lines: int = 30) -> str:
        text = self.log_path.read_text(encoding="utf-8", errors="replace")
        return "\n".join(text.splitlines()[-lines:])


@dataclass(frozen=True)
class Plan:
    """Where things run: the servers' core, the load generator's core, the scratch folder."""

    workdir: Path
    server_cpu: int | None
    load_cpu: int | None


@contextmanager
def running(plan: Plan, name: str, args: Sequence[str], env: dict[str, str]) -> Iterator[Server]:
    """A server process logging to `<workdir>/<name>.log`; stopped (then killed) on exit.

    It runs in the scratch folder, so a developer's `.env` cannot change its settings.
    """
    from tests.bench.load import pinned

    port = free_port()
    log_path = plan.workdir / f"{name}.log"
    with log_path.open("ab") as log_file:
        process = subprocess.Popen(
            pinned([*args, "--port", str(port)], plan.server_cpu),
            env=env,
            cwd=plan.workdir,
            stdin=subprocess.DEVNULL,
            stdout=log_file,
            stderr=subprocess.STDOUT,
        )
    server = Server(name, process, log_path, f"http://127.0.0.1:{port}")
    try:
        yield server
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def wait_ready(server: Server, path: str = HEALTH_PATH, *, every: float = 0.2) -> float:
    """Seconds from now until `path` answers 200."""
    started = time.monotonic()
    with httpx.Client(base_url=server.base_url, timeout=2, trust_env=False) as client:
        while True:
            if server.process.poll() is not None:
                raise BenchError(
                    f"the {server.name} server exited with {server.process.returncode}:\n"
                    + server.log_tail()
                )
            try:
                if client.get(path).status_code == 200:
                    return time.monotonic() - started
            except httpx.TransportError:
                pass
            if time.monotonic() - started > STARTUP_TIMEOUT_SECONDS:
                raise BenchError(
                    f"the {server.name} server did not answer {path} within "
                    f"{STARTUP_TIMEOUT_SECONDS:g}s:\n" + server.log_tail()
                )
            time.sleep(every)


# --------------------------------------------------------------------------------------------
# The database, the servers' environments and the data every request reads.


def asyncpg_dsn(url: str) -> str:
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


async def admin_execute(admin_url: str, statement: str) -> None:
    connection = await asyncpg.connect(asyncpg_dsn(admin_url))
    try:
        await connection.execute(statement)
    finally:
        await connection.close()


@contextmanager
def scratch_database(admin_url: str) -> Iterator[str]:
    name = f"{SLUG}_bench_{uuid.uuid4().hex[:8]}"
    progress(f"creating database {name}")
    asyncio.run(admin_execute(admin_url, f'CREATE DATABASE "{name}"'))
    try:
        yield (
            make_url(admin_url)
            .set(drivername="postgresql+asyncpg", database=name)
            .render_as_string(hide_password=False)
        )
    finally:
        asyncio.run(admin_execute(admin_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


SETTINGS_VARIABLES = frozenset(name.upper() for name in Settings.model_fields)


def service_env(**variables: str) -> dict[str, str]:
    """This process's environment without the service's variables, plus `variables`."""
    env = {
        name: value for name, value in os.environ.items() if name.upper() not in SETTINGS_VARIABLES
    }
    env.update(PYTHONUNBUFFERED="1", PYTHONPATH=str(PROJECT_ROOT), **variables)
    return env


@dataclass(frozen=True)
class Fixture:
    token: str
    item_path: str | None


def expect(response: httpx.Response, status: int, step: str) -> dict[str, Any]:
    if response.status_code != status:
        raise BenchError(f"{step}: expected {status}, got {response.status_code}: {response.text}")
    body: dict[str, Any] = response.json()
    return body


def prepare(base_url: str) -> Fixture:
    """Register, log in and create the item that every read fetches, through the API."""
    email = f"bench-{uuid.uuid4().hex[:12]}@example.com"
    password = secrets.token_urlsafe(24)
    with httpx.Client(base_url=base_url, timeout=10, trust_env=False) as api:
        account = {"email": email, "password": password, "full_name": "Bench Mark"}
        expect(api.post("/api/v1/auth/register", json=account), 201, "register")
        login = {"email": email, "password": password}
        tokens = expect(api.post("/api/v1/auth/login", json=login), 200, "login")
        token = str(tokens["access_token"])
        if not EXAMPLE_DOMAIN:
            return Fixture(token, None)
        item = expect(
            api.post(
                "/api/v1/items",
                json={"title": "Benchmark item", "description": "Read by every request."},
                headers={"Authorization": f"Bearer {token}"},
            ),
            201,
            "create item",
        )
        return Fixture(token, f"/api/v1/items/{item['id']}")


def normalized(document: dict[str, Any]) -> dict[str, Any]:
    """Timestamps as datetimes: Pydantic writes `Z` where `isoformat()` writes `+00:00`."""

    def value(raw: Any) -> Any:
        if isinstance(raw, str):
            try:
                return datetime.fromisoformat(raw)
            except ValueError:
                return raw
        return raw

    return {key: value(raw) for key, raw in document.items()}


def check_same_answers(servers: Sequence[Server], targets: Sequence[Target]) -> None:
    """Both servers must answer each read with the same document, or the ratio means nothing."""
    for target in targets:
        if target.method != "GET":
            continue
        headers = {"Authorization": f"Bearer {target.token}"} if target.token else {}
        answers = []
        for server in servers:
            response = httpx.get(
                server.base_url + target.path, headers=headers, timeout=10, trust_env=False
            )
            answers.append(normalized(expect(response, 200, f"{server.name} GET {target.path}")))
        if any(answer != answers[0] for answer in answers[1:]):
            raise BenchError(f"the servers answer GET {target.path} differently: {answers}")


# --------------------------------------------------------------------------------------------
# Measuring.


@dataclass(frozen=True)
class Scenario:
    label: str
    target: Target
    connections: int


@dataclass
class Row:
    """Every round of one scenario on one server."""

    scenario: str
    connections: int
    server: str
    rounds: list[Measurement] = field(default_factory=list)
    cpu_seconds: float = 0.0

    @property
    def requests(self) -> int:
        return sum(measurement.requests for measurement in self.rounds)

    def median(self, attribute: str) -> float:
        return float(statistics.median(getattr(m, attribute) for m in self.rounds))

    @property
    def rps(self) -> float:
        return self.median("rps")

    @property
    def errors(self) -> int:
        return sum(measurement.errors for measurement in self.rounds)

    @property
    def timeouts(self) -> int:
        return sum(measurement.timeouts for measurement in self.rounds)

    @property
    def cpu_us(self) -> float | None:
        if not self.requests or not self.cpu_seconds:
            return None
        return self.cpu_seconds / self.requests * 1e6

    @property
    def client_bound(self) -> bool:
        return any(
            measurement.client_cpu is not None and measurement.client_cpu > CLIENT_BOUND_CPU
            for measurement in self.rounds
        )

    def as_json(self) -> dict[str, Any]:
        return {
            "scenario": self.scenario,
            "connections": self.connections,
            "server": self.server,
            "rps_median": self.rps,
            "p50_ms_median": self.median("p50_ms"),
            "p99_ms_median": self.median("p99_ms"),
            "errors": self.errors,
            "timeouts": self.timeouts,
            "server_cpu_us_per_request": self.cpu_us,
            "client_bound": self.client_bound,
            "rounds": [asdict(measurement) for measurement in self.rounds],
        }


def measure(
    generator: Generator, server: Server, scenario: Scenario, row: Row, seconds: float
) -> None:
    """A short unmeasured warm-up, then one measured round with the server's CPU time."""
    generator.run(server.base_url, scenario.target, connections=scenario.connections, seconds=1.0)
    before = cpu_seconds(server.pid)
    measurement = generator.run(
        server.base_url, scenario.target, connections=scenario.connections, seconds=seconds
    )
    after = cpu_seconds(server.pid)
    if before is not None and after is not None:
        row.cpu_seconds += after - before
    row.rounds.append(measurement)


def measure_alternating(
    generator: Generator,
    servers: Sequence[Server],
    scenarios: Sequence[Scenario],
    rounds: int,
    seconds: float,
) -> list[Row]:
    results: list[Row] = []
    for scenario in scenarios:
        rows = {s.name: Row(scenario.label, scenario.connections, s.name) for s in servers}
        results.extend(rows.values())
        for number in range(rounds):
            # full, bare, bare, full, ...: a drift in machine speed (other jobs, thermal
            # limits) then weighs on both servers alike instead of on one.
            order = servers if number % 2 == 0 else list(reversed(servers))
            for server in order:
                progress(
                    f"{server.name}: {scenario.label} x{scenario.connections} "
                    f"(round {number + 1}/{rounds})"
                )
                measure(generator, server, scenario, rows[server.name], seconds)
    return results


# --------------------------------------------------------------------------------------------
# The table.


def fmt(value: float | None, spec: str) -> str:
    return "-" if value is None else format(value, spec)


def ratio(full: float | None, bare: float | None) -> str:
    return f"{full / bare:.2f}x" if full and bare else "-"


def comparison_table(rows: Sequence[Row]) -> list[str]:
    lines = [
        f"{'scenario':<30} {'conns':>5} {'server':<9} {'req/s':>9} {'p50 ms':>8} {'p99 ms':>8} "
        f"{'errors':>7} {'timeouts':>8} {'cpu us/req':>10}"
    ]
    by_key = {(row.scenario, row.connections, row.server): row for row in rows}
    for scenario, connections in dict.fromkeys((row.scenario, row.connections) for row in rows):
        full, bare = by_key[scenario, connections, "full"], by_key[scenario, connections, "bare"]
        for label, row in ((scenario, full), ("", bare)):
            flag = "  client-bound" if row.client_bound else ""
            lines.append(
                f"{label:<30} {connections if label else '':>5} {row.server:<9} "
                f"{row.rps:>9.1f} {row.median('p50_ms'):>8.2f} {row.median('p99_ms'):>8.2f} "
                f"{row.errors:>7} {row.timeouts:>8} {fmt(row.cpu_us, '>10.0f')}{flag}"
            )
        lines.append(
            f"{'':<30} {'':>5} {'full/bare':<9} {ratio(full.rps, bare.rps):>9} "
            f"{ratio(full.median('p50_ms'), bare.median('p50_ms')):>8} "
            f"{ratio(full.median('p99_ms'), bare.median('p99_ms')):>8} {'':>7} {'':>8} "
            f"{ratio(full.cpu_us, bare.cpu_us):>10}"
        )
    return lines


def cache_table(rows: Sequence[Row]) -> list[str]:
    """The cached server's rows against the uncached one's, scenario by scenario."""
    by_key = {(row.scenario, row.connections, row.server): row for row in rows}
    lines = []
    for scenario, connections in dict.fromkeys((row.scenario, row.connections) for row in rows):
        on = by_key[scenario, connections, "cached"]
        off = by_key[scenario, connections, "full"]
        p99 = ratio(on.median("p99_ms"), off.median("p99_ms"))
        lines.append(
            f"{scenario:<30} {connections:>5} req/s {on.rps:.1f} vs {off.rps:.1f}: "
            f"{ratio(on.rps, off.rps)}; p99 {p99}; "
            f"cpu us/req {fmt(on.cpu_us, '.0f')} vs {fmt(off.cpu_us, '.0f')}; "
            f"errors {on.errors + off.errors}, timeouts {on.timeouts + off.timeouts}"
        )
    return lines


def header(generator: Generator, plan: Plan, rounds: int, seconds: float) -> list[str]:
    pinning = (
        f"servers pinned to CPU {plan.server_cpu}, load to CPU {plan.load_cpu}"
        if plan.server_cpu is not None
        else "no pinning (one CPU)"
    )
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else None
    client_note = (
        f"; a Python client: rows above {CLIENT_BOUND_CPU:.0%} of a core are marked client-bound"
        if isinstance(generator, PythonClient)
        else ""
    )
    return [
        "",
        f"full: {SLUG} with production settings on {BACKENDS}, INFO logs to a file, one worker",
        "bare: FastAPI + SQLAlchemy + python-jose doing the same reads and writes, one worker",
        f"load: {generator.name}{client_note}",
        f"{rounds} alternating rounds of {seconds:g}s per row (after a 1s warm-up each); "
        "req/s, p50, p99: median round",
        f"{os.cpu_count()} CPUs, {pinning}"
        + (f", load average {load:.2f} at the start" if load is not None else ""),
        "",
    ]


def write_json(kind: str, document: dict[str, Any]) -> Path:
    RESULTS_DIR.mkdir(exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    path = RESULTS_DIR / f"{kind}-{stamp}.json"
    path.write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")
    return path


# --------------------------------------------------------------------------------------------
# The three modes.


@dataclass(frozen=True)
class Options:
    rounds: int
    seconds: float
    connections: tuple[int, ...]
    generator: str
    soak_requests: int


@dataclass
class Setup:
    plan: Plan
    generator: Generator
    full_env: dict[str, str]
    bare_env: dict[str, str]
    layers_env: Callable[[int], dict[str, str]]


CLI = (sys.executable, "-m", SLUG, "serve")
BARE = (sys.executable, "-m", "tests.bench", "serve-bare")
LAYERED = (sys.executable, "-m", "tests.bench", "serve-layers")


@contextmanager
def setup(options: Options) -> Iterator[Setup]:
    try:
        urls = resolve(REQUIRED_SERVICES)
    except ServicesUnavailableError as exc:
        raise BenchError(str(exc)) from None
    cpus = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else []
    server_cpu, load_cpu = (cpus[0], cpus[1]) if len(cpus) >= 2 else (None, None)
    if load_cpu is not None and hasattr(os, "sched_setaffinity"):
        # This process only waits on the others, but it must not take the servers' core.
        os.sched_setaffinity(0, {load_cpu})
    workdir = Path(tempfile.mkdtemp(prefix=f"{SLUG}-bench-"))
    plan = Plan(workdir, server_cpu, load_cpu)
    secret_key = secrets.token_hex(32)
    try:
        generator = choose(options.generator, workdir, load_cpu)
        with scratch_database(urls.database) as database_url:
            full_env = service_env(
                ENVIRONMENT="production",
                SECRET_KEY=secret_key,
                ENCRYPTION_KEYS=base64.urlsafe_b64encode(secrets.token_bytes(32)).decode(),
                DATABASE_URL=database_url,
{%- if cookiecutter.use_redis == 'y' %}
                REDIS_URL=urls.redis,
{%- endif %}
{%- if cookiecutter.use_celery == 'y' %}
                # Creating items enqueues follow-up tasks; an in-process broker keeps them out
                # of the shared broker, where no worker of this run would take them.
                CELERY_BROKER_URL="memory://",
{%- endif %}
                LOG_LEVEL="INFO",
                # Keys of this run's own: other users of the Redis never share its counters.
                REDIS_KEY_PREFIX=f"{SLUG}-bench-{uuid.uuid4().hex[:8]}:",
                RATE_LIMIT_DEFAULT=UNLIMITED_RATE,
                RATE_LIMIT_AUTH=UNLIMITED_RATE,
                # The bare app reads the database on every request, so the comparison does too;
                # the cache's own rows run a second server with it on.
                CACHE_BACKEND="none",
            )
            progress("db upgrade")
            migrated = subprocess.run(
                [sys.executable, "-m", SLUG, "db", "upgrade"],
                env=full_env,
                cwd=workdir,
                capture_output=True,
                check=False,
            )
            if migrated.returncode != 0:
                raise BenchError(f"db upgrade failed:\n{migrated.stderr.decode()}")
            bare_env = service_env(BENCH_DATABASE_URL=database_url, BENCH_SECRET_KEY=secret_key)
            yield Setup(
                plan,
                generator,
                full_env,
                bare_env,
                lambda layers: {**full_env, "BENCH_LAYERS": str(layers)},
            )
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def scenarios(fixture: Fixture, connections: Sequence[int]) -> list[Scenario]:
    targets = [(f"GET {HEALTH_PATH}", Target("GET", HEALTH_PATH))]
    if fixture.item_path is not None:
        body = json.dumps({"title": "Benchmark", "description": "Written by the benchmark."})
        targets += [
            ("GET /api/v1/items/{id} (auth)", Target("GET", fixture.item_path, fixture.token)),
            ("POST /api/v1/items (auth)", Target("POST", "/api/v1/items", fixture.token, body)),
        ]
    return [Scenario(label, target, n) for label, target in targets for n in connections]


def cold_start(plan: Plan, name: str, args: Sequence[str], env: dict[str, str]) -> float:
    """Median seconds from spawn to the first 200 on the liveness probe."""
    seconds = []
    for number in range(COLD_STARTS):
        with running(plan, f"{name}-cold-{number}", args, env) as server:
            seconds.append(wait_ready(server, every=0.01))
    return statistics.median(seconds)


def run_comparison(options: Options) -> int:
    with setup(options) as bench, ExitStack() as stack:
        plan = bench.plan
        progress("starting both servers")
        full = stack.enter_context(running(plan, "full", CLI, bench.full_env))
        bare = stack.enter_context(running(plan, "bare", BARE, bench.bare_env))
        # Readiness, not liveness: the full stack must have reached its database and Redis.
        wait_ready(full, "/health/ready")
        wait_ready(bare)
        fixture = prepare(full.base_url)
        plan_scenarios = scenarios(fixture, options.connections)
        check_same_answers((full, bare), [s.target for s in plan_scenarios])
        rows = measure_alternating(
            bench.generator, (full, bare), plan_scenarios, options.rounds, options.seconds
        )
        memory = {server.name: rss_mb(server.pid) for server in (full, bare)}
        unchecked = {"full": unchecked_requests(full)}
        cache_rows: list[Row] = []
        if fixture.item_path is not None:
            progress("starting the full stack with its cache on")
            cached_env = {**bench.full_env, "CACHE_BACKEND": "auto"}
            cached = stack.enter_context(running(plan, "cached", CLI, cached_env))
            wait_ready(cached, "/health/ready")
            reads = [s for s in plan_scenarios if s.target.method == "GET" and s.target.token]
            cache_rows = measure_alternating(
                bench.generator, (cached, full), reads, options.rounds, options.seconds
            )
            unchecked["cached"] = unchecked_requests(cached)
        stack.close()
        progress("cold starts")
        starts = {
            "full": cold_start(plan, "full", CLI, bench.full_env),
            "bare": cold_start(plan, "bare", BARE, bench.bare_env),
        }
        lines = header(bench.generator, plan, options.rounds, options.seconds)
        lines += comparison_table(rows)
        if cache_rows:
            lines += ["", "the item read with the cache on (cached) and off (full):"]
            lines += cache_table(cache_rows)
        if not EXAMPLE_DOMAIN:
            lines.append("(item scenarios skipped: this project has no example domain)")
        lines += [
            "",
            f"cold start, spawn to first 200 (median of {COLD_STARTS}): "
            f"full {starts['full']:.2f}s, bare {starts['bare']:.2f}s, "
            f"{ratio(starts['full'], starts['bare'])}",
            f"RSS after the run: full {fmt(memory['full'], '.1f')} MB, "
            f"bare {fmt(memory['bare'], '.1f')} MB",
            "rate-limit checks admitted without Redis (failed open): "
            + ", ".join(f"{name} {fmt(count, 'd')}" for name, count in unchecked.items()),
        ]
        if any(unchecked.values()):
            lines.append("  (those requests skipped the limiter: the figures flatter the stack)")
        path = write_json(
            "bench",
            {
                "generator": bench.generator.name,
                "cpus": os.cpu_count(),
                "pinned": plan.server_cpu is not None,
                "rounds": options.rounds,
                "seconds": options.seconds,
                "rows": [row.as_json() for row in rows],
                "cache_rows": [row.as_json() for row in cache_rows],
                "cold_start_seconds": starts,
                "rss_mb_after_run": memory,
                "rate_limit_failed_open": unchecked,
            },
        )
        lines += [f"JSON: {path}", ""]
        sys.stdout.write("\n".join(lines))
    return 0


def run_soak(options: Options) -> int:
    with setup(options) as bench, ExitStack() as stack:
        plan = bench.plan
        full = stack.enter_context(running(plan, "full", CLI, bench.full_env))
        bare = stack.enter_context(running(plan, "bare", BARE, bench.bare_env))
        wait_ready(full, "/health/ready")
        wait_ready(bare)
        fixture = prepare(full.base_url)
        # The authenticated item read when the project has it, else the liveness probe.
        target = scenarios(fixture, (64,))[1 if fixture.item_path else 0].target
        label = "GET /api/v1/items/{id} (auth)" if fixture.item_path else f"GET {HEALTH_PATH}"
        results: dict[str, list[float | None]] = {}
        for server in (full, bare):
            results[server.name] = [rss_mb(server.pid)]
            for batch in (1, 2):
                progress(f"{server.name}: {options.soak_requests} requests, batch {batch}")
                bench.generator.run(
                    server.base_url, target, connections=64, requests=options.soak_requests
                )
                results[server.name].append(rss_mb(server.pid))
        lines = [
            "",
            f"soak: {label} at 64 connections, load from {bench.generator.name}",
            f"{'server':<8} {'RSS at start':>13} {'after ' + str(options.soak_requests):>16} "
            f"{'after ' + str(2 * options.soak_requests):>16}",
        ]
        for name, values in results.items():
            lines.append(
                f"{name:<8} " + " ".join(f"{fmt(v, '.1f') + ' MB':>16}" for v in values).strip()
            )
        path = write_json(
            "soak", {"scenario": label, "requests": options.soak_requests, "rss_mb": results}
        )
        lines += [f"JSON: {path}", ""]
        sys.stdout.write("\n".join(lines))
    return 0


def run_breakdown(options: Options) -> int:
    from tests.bench.layers import VARIANTS

    with setup(options) as bench, ExitStack() as stack:
        plan = bench.plan
        full = stack.enter_context(running(plan, "full", CLI, bench.full_env))
        wait_ready(full, "/health/ready")
        fixture = prepare(full.base_url)
        stack.close()
        scenario = scenarios(fixture, (64,))[1 if fixture.item_path else 0]
        rows: list[Row] = []
        for index, variant in enumerate(VARIANTS):
            with running(plan, f"layers-{index}", LAYERED, bench.layers_env(index)) as server:
                wait_ready(server)
                row = Row(variant, scenario.connections, variant)
                for number in range(options.rounds):
                    progress(f"{variant}: round {number + 1}/{options.rounds}")
                    measure(bench.generator, server, scenario, row, options.seconds)
                rows.append(row)
        lines = header(bench.generator, plan, options.rounds, options.seconds)[3:]
        lines[0:0] = [
            "",
            f"per-layer breakdown: {scenario.label} at {scenario.connections} connections, "
            "the stack built up one layer at a time",
        ]
        lines.append(
            f"{'layers':<42} {'req/s':>9} {'p50 ms':>8} {'p99 ms':>8} {'errors':>7} "
            f"{'timeouts':>8} {'cpu us/req':>10} {'+us/req':>8}"
        )
        previous: float | None = None
        for row in rows:
            cost = row.cpu_us
            delta = cost - previous if cost is not None and previous is not None else None
            lines.append(
                f"{row.scenario:<42} {row.rps:>9.1f} {row.median('p50_ms'):>8.2f} "
                f"{row.median('p99_ms'):>8.2f} {row.errors:>7} {row.timeouts:>8} "
                f"{fmt(cost, '>10.0f')} {fmt(delta, '>+8.0f')}"
            )
            previous = cost
        path = write_json("breakdown", {"rows": [row.as_json() for row in rows]})
        lines += [
            "(+us/req: server CPU per request added by that layer; create_app's row should match "
            "the one before it, within the noise)",
            f"JSON: {path}",
            "",
        ]
        sys.stdout.write("\n".join(lines))
    return 0


# --------------------------------------------------------------------------------------------


def positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def positive_float(text: str) -> float:
    value = float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be positive, got {value}")
    return value


def connection_counts(text: str) -> tuple[int, ...]:
    return tuple(positive_int(part) for part in text.split(","))


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tests.bench",
        description="The service under load, side by side with a bare FastAPI app.",
    )
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--breakdown", action="store_true", help="the per-layer breakdown")
    mode.add_argument("--soak", action="store_true", help="memory after 100k and 200k requests")
    parser.add_argument(
        "--duration",
        type=positive_float,
        default=float(os.environ.get("BENCH_DURATION", "5")),
        help="seconds per measured round (BENCH_DURATION, default 5)",
    )
    parser.add_argument(
        "--rounds",
        type=positive_int,
        default=int(os.environ.get("BENCH_ROUNDS", "3")),
        help="rounds per row, alternating the servers (BENCH_ROUNDS, default 3)",
    )
    parser.add_argument(
        "--connections",
        type=connection_counts,
        default=(64, 256),
        help="comma-separated connection counts (default 64,256)",
    )
    parser.add_argument(
        "--generator",
        choices=("auto", "wrk", "oha", "python"),
        default=os.environ.get("BENCH_GENERATOR", "auto"),
        help="load generator (BENCH_GENERATOR, default auto: wrk, else oha, else python)",
    )
    parser.add_argument(
        "--soak-requests",
        type=positive_int,
        default=100_000,
        help="requests per soak batch (default 100000)",
    )
    commands = parser.add_subparsers(dest="command", help=argparse.SUPPRESS)
    bare = commands.add_parser("serve-bare", help="internal: serve the bare app")
    bare.add_argument("--port", type=int, required=True)
    layers = commands.add_parser("serve-layers", help="internal: serve one breakdown variant")
    layers.add_argument("--port", type=int, required=True)
    load = commands.add_parser("load", help="internal: the Python load generator")
    load.add_argument("--url", required=True)
    load.add_argument("--method", required=True)
    load.add_argument("--path", required=True)
    load.add_argument("--connections", type=positive_int, required=True)
    load.add_argument("--seconds", type=positive_float)
    load.add_argument("--requests", type=positive_int)
    args = parser.parse_args(argv)

    if args.command in ("serve-bare", "serve-layers"):
        serve(args.command, args.port)
        return 0
    if args.command == "load":
        result = generate(
            args.url,
            args.method,
            args.path,
            connections=args.connections,
            seconds=args.seconds,
            requests=args.requests,
        )
        sys.stdout.write(json.dumps(result) + "\n")
        return 0
    options = Options(
        args.rounds, args.duration, args.connections, args.generator, args.soak_requests
    )
    try:
        if args.breakdown:
            return run_breakdown(options)
        if args.soak:
            return run_soak(options)
        return run_comparison(options)
    except (BenchError, RuntimeError) as exc:
        sys.stderr.write(f"bench: {exc}\n")
        return 1


def serve(command: str, port: int) -> None:
    import uvicorn

    app = (
        "tests.bench.bare:create_bare_app"
        if command == "serve-bare"
        else "tests.bench.layers:create_layered_app"
    )
    # As the service's `serve` command: one worker, no server header, no proxy headers.
    uvicorn.run(
        app,
        factory=True,
        host="127.0.0.1",
        port=port,
        log_config=None,
        access_log=False,
        server_header=False,
        proxy_headers=False,
    )

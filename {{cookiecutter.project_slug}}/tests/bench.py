"""Throughput and latency of the full service against a bare FastAPI app doing the same work.

`make bench` (`python -m tests.bench`) creates a scratch PostgreSQL database, migrates it, and runs
two servers as separate processes: the service itself (its `serve` command with production
settings) and a bare FastAPI app defined below that answers the same requests with no middleware, no
dependency injection and no service layer: the same JSON for the liveness probe, and for the
authenticated read the same JWT check and the same rows read through SQLAlchemy async. A third
process generates the load over loopback, so the client never shares an event loop or a CPU
budget with the server it measures. The table shows what the stack costs per request.

Pass --requests, --duration, --rounds and --concurrency for a longer or heavier run. Numbers are
only comparable between runs on the same machine; the "client cpu" column says when the load
generator, not the server, was the bottleneck (close to 100%).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Coroutine, Iterator, Sequence
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import httpx

# FastAPI resolves the bare routes' annotations in this module's namespace, so Request lives here.
from starlette.requests import Request

if TYPE_CHECKING:
    from fastapi import FastAPI

SLUG = "{{ cookiecutter.project_slug }}"
PROJECT_ROOT = Path(__file__).resolve().parents[1]
HEALTH_PATH = "/health/live"
{%- if cookiecutter.include_example_domain == 'y' %}
AUTHENTICATED_ROUTE = "/api/v1/items/{id}"
{%- else %}
AUTHENTICATED_ROUTE = "/api/v1/users/me"
{%- endif %}
# The service's default pool (Settings.database_pool_size, overflow as large), so both servers
# can hold the same number of connections under load.
POOL_SIZE = 10
WARMUP_SECONDS = 1.5
REQUEST_TIMEOUT_SECONDS = 10.0
STARTUP_TIMEOUT_SECONDS = 30.0
{%- if cookiecutter.use_redis == 'y' %}
BACKENDS = "PostgreSQL and Redis"
REQUIRED_SERVICES = ("TEST_DATABASE_URL", "TEST_REDIS_URL")
{%- else %}
BACKENDS = "PostgreSQL"
REQUIRED_SERVICES = ("TEST_DATABASE_URL",)
{%- endif %}
# Every request comes from one address, so a per-client limit would turn the run into a
# benchmark of 429 answers; the limit is raised, everything else stays at production values.
UNLIMITED_RATE = "100000000/minute"

T = TypeVar("T")


class BenchError(RuntimeError):
    """The benchmark could not run; the message says which step failed."""


# --------------------------------------------------------------------------------------------
# The bare app: served in its own process by `python -m tests.bench serve-bare`.


def create_bare_app() -> FastAPI:
    """FastAPI, python-jose and SQLAlchemy only; reads BENCH_DATABASE_URL and BENCH_SECRET_KEY."""
    # Imported here so the load generator, which imports this module too, starts quickly.
    from fastapi import FastAPI, HTTPException
    from jose import JWTError, jwt
    from sqlalchemy.ext.asyncio import async_sessionmaker, create_async_engine

    from {{ cookiecutter.project_slug }}.core import security
{%- if cookiecutter.include_example_domain == 'y' %}
    from {{ cookiecutter.project_slug }}.models.item import Item
{%- endif %}
    from {{ cookiecutter.project_slug }}.models.user import User

    secret_key = os.environ["BENCH_SECRET_KEY"]
    # Plain engine: the service's choices (pre-ping, recycling) are part of what is measured.
    engine = create_async_engine(
        os.environ["BENCH_DATABASE_URL"], pool_size=POOL_SIZE, max_overflow=POOL_SIZE
    )
    sessions = async_sessionmaker(engine, expire_on_commit=False)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        yield
        await engine.dispose()

    app = FastAPI(lifespan=lifespan, docs_url=None, redoc_url=None, openapi_url=None)

    @app.get(HEALTH_PATH)
    async def live() -> dict[str, Any]:
        return {"status": "ok", "checks": {}}

    def subject(request: Request) -> uuid.UUID:
        # The same checks as the service: algorithm allow-list, issuer, audience, token type.
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not token:
            raise HTTPException(status_code=401)
        try:
            payload = jwt.decode(
                token,
                secret_key,
                algorithms=security.ALLOWED_ALGORITHMS,
                audience=security.AUDIENCE,
                issuer=security.ISSUER,
                options={"require_exp": True, "require_iat": True, "require_sub": True},
            )
            if payload.get("type") != "access":
                raise HTTPException(status_code=401)
            return uuid.UUID(str(payload["sub"]))
        except (JWTError, ValueError):
            raise HTTPException(status_code=401) from None
{%- if cookiecutter.include_example_domain == 'y' %}

    @app.get(AUTHENTICATED_ROUTE.replace("{id}", "{item_id}"))
    async def read_item(item_id: uuid.UUID, request: Request) -> dict[str, Any]:
        user_id = subject(request)
        # Same queries as the service: the token's user, then the item, in one session.
        async with sessions() as session:
            user = await session.get(User, user_id)
            if user is None or not user.is_active:
                raise HTTPException(status_code=401)
            item = await session.get(Item, item_id)
            if item is None or (item.owner_id != user.id and not user.is_admin):
                raise HTTPException(status_code=404)
            return {
                "id": item.id,
                "owner_id": item.owner_id,
                "title": item.title,
                "description": item.description,
                "version": item.version,
                "processed_at": item.processed_at,
                "created_at": item.created_at,
                "updated_at": item.updated_at,
            }
{%- else %}

    @app.get(AUTHENTICATED_ROUTE)
    async def read_me(request: Request) -> dict[str, Any]:
        user_id = subject(request)
        async with sessions() as session:
            user = await session.get(User, user_id)
            if user is None or not user.is_active:
                raise HTTPException(status_code=401)
            return {
                "id": user.id,
                "email": user.email,
                "full_name": user.full_name,
                "role": user.role,
                "is_active": user.is_active,
                "welcome_email_sent_at": user.welcome_email_sent_at,
                "created_at": user.created_at,
            }
{%- endif %}

    return app


def serve_bare(port: int) -> None:
    import uvicorn

    # As the service's `serve` command: one worker, no server header, no proxy headers.
    uvicorn.run(
        "tests.bench:create_bare_app",
        factory=True,
        host="127.0.0.1",
        port=port,
        log_config=None,
        access_log=False,
        server_header=False,
        proxy_headers=False,
    )


# --------------------------------------------------------------------------------------------
# The load generator: run in its own process by `python -m tests.bench load`.


@dataclass
class Sample:
    latencies: list[float]
    statuses: Counter[int]
    seconds: float


async def drive(
    client: httpx.AsyncClient, path: str, *, requests: int, concurrency: int, seconds: float
) -> Sample:
    """`requests` GETs from `concurrency` workers, stopping early once `seconds` have passed."""
    remaining = requests
    latencies: list[float] = []
    statuses: Counter[int] = Counter()
    started = time.perf_counter()
    deadline = started + seconds

    async def worker() -> None:
        nonlocal remaining
        while remaining > 0 and time.perf_counter() < deadline:
            remaining -= 1
            sent = time.perf_counter()
            try:
                status = (await client.get(path)).status_code
            except httpx.HTTPError:
                status = 0  # counted as an error, not dropped from the sample
            latencies.append(time.perf_counter() - sent)
            statuses[status] += 1

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return Sample(latencies, statuses, time.perf_counter() - started)


def percentile(ordered: Sequence[float], fraction: float) -> float:
    """Nearest-rank percentile of an ascending sequence."""
    return ordered[max(0, math.ceil(fraction * len(ordered)) - 1)]


async def generate_load(
    url: str, path: str, *, requests: int, warmup: int, concurrency: int, duration: float
) -> dict[str, Any]:
    token = os.environ.get("BENCH_TOKEN")
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(
        base_url=url,
        headers={"Authorization": f"Bearer {token}"} if token else {},
        limits=limits,
        timeout=REQUEST_TIMEOUT_SECONDS,
        trust_env=False,  # a proxy from the environment must never sit between us and loopback
    ) as client:
        # Opens the connections and lets pools, caches and the allocator settle first.
        await drive(client, path, requests=warmup, concurrency=concurrency, seconds=WARMUP_SECONDS)
        cpu_started = time.process_time()
        sample = await drive(
            client, path, requests=requests, concurrency=concurrency, seconds=duration
        )
        cpu = time.process_time() - cpu_started
    # Raw latencies, so the rounds of one row are merged before taking percentiles.
    return {
        "latencies": sample.latencies,
        "seconds": sample.seconds,
        "statuses": {str(status): n for status, n in sample.statuses.items()},
        "cpu_seconds": cpu,
    }


def run_loop(work: Coroutine[Any, Any, T]) -> T:
    try:
        import uvloop
    except ImportError:  # not available on Windows
        return asyncio.run(work)
    # The client is usually the tighter bottleneck on a small machine; uvloop widens it.
    return uvloop.run(work)


# --------------------------------------------------------------------------------------------
# The run: database, servers, setup through the API, one load process per measurement.


@dataclass(frozen=True)
class Options:
    requests: int
    warmup: int
    concurrency: int
    duration: float
    rounds: int


@dataclass
class Result:
    """One row of the table: every round of one endpoint on one server, merged."""

    endpoint: str
    server: str
    latencies: list[float] = field(default_factory=list)
    seconds: float = 0.0
    cpu_seconds: float = 0.0
    statuses: Counter[str] = field(default_factory=Counter)

    def add(self, data: dict[str, Any]) -> None:
        self.latencies.extend(data["latencies"])
        self.seconds += data["seconds"]
        self.cpu_seconds += data["cpu_seconds"]
        self.statuses.update(data["statuses"])

    @property
    def rps(self) -> float:
        return len(self.latencies) / self.seconds

    def percentile_ms(self, fraction: float) -> float:
        return percentile(sorted(self.latencies), fraction) * 1000

    @property
    def errors(self) -> int:
        return sum(n for status, n in self.statuses.items() if status != "200")

    @property
    def client_cpu(self) -> float:
        return self.cpu_seconds / self.seconds


@dataclass
class Server:
    name: str
    process: subprocess.Popen[bytes]
    log_path: Path
    base_url: str

    def log_tail(self, lines: int = 40) -> str:
        text = self.log_path.read_text(encoding="utf-8", errors="replace")
        return "\n".join(text.splitlines()[-lines:])


STARTED = time.monotonic()


def progress(message: str) -> None:
    sys.stderr.write(f"bench [{time.monotonic() - STARTED:5.1f}s]: {message}\n")
    sys.stderr.flush()


@contextmanager
def running(
    name: str, args: Sequence[str], *, env: dict[str, str], cwd: Path, workdir: Path, port: int
) -> Iterator[Server]:
    """A server process writing to `<workdir>/<name>.log`; stopped (then killed) on exit."""
    log_path = workdir / f"{name}.log"
    with log_path.open("wb") as log_file:
        process = subprocess.Popen(
            list(args),
            env=env,
            cwd=cwd,
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
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def wait_ready(server: Server, path: str) -> None:
    deadline = time.monotonic() + STARTUP_TIMEOUT_SECONDS
    with httpx.Client(base_url=server.base_url, timeout=2, trust_env=False) as client:
        while True:
            if server.process.poll() is not None:
                raise BenchError(
                    f"the {server.name} server exited with {server.process.returncode}:\n"
                    + server.log_tail()
                )
            try:
                if client.get(path).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise BenchError(
                    f"the {server.name} server did not answer {path} within "
                    f"{STARTUP_TIMEOUT_SECONDS:g}s:\n" + server.log_tail()
                )
            time.sleep(0.2)


def expect(response: httpx.Response, status: int, step: str) -> dict[str, Any]:
    if response.status_code != status:
        raise BenchError(f"{step}: expected {status}, got {response.status_code}: {response.text}")
    body: dict[str, Any] = response.json()
    return body


def prepare(base_url: str) -> tuple[str, str]:
    """Register, log in (and create the item) through the API; returns (token, path to read)."""
    email = f"bench-{uuid.uuid4().hex[:12]}@example.com"
    password = secrets.token_urlsafe(24)
    with httpx.Client(base_url=base_url, timeout=REQUEST_TIMEOUT_SECONDS, trust_env=False) as api:
        expect(
            api.post(
                "/api/v1/auth/register",
                json={"email": email, "password": password, "full_name": "Bench Mark"},
            ),
            201,
            "register",
        )
        tokens = expect(
            api.post("/api/v1/auth/login", json={"email": email, "password": password}),
            200,
            "login",
        )
        token = str(tokens["access_token"])
{%- if cookiecutter.include_example_domain == 'y' %}
        item = expect(
            api.post(
                "/api/v1/items",
                json={"title": "Benchmark item", "description": "Read by every request."},
                headers={"Authorization": f"Bearer {token}"},
            ),
            201,
            "create item",
        )
        return token, AUTHENTICATED_ROUTE.replace("{id}", str(item["id"]))
{%- else %}
        return token, AUTHENTICATED_ROUTE
{%- endif %}


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


def check_same_answers(servers: Sequence[Server], paths: Sequence[str], token: str) -> None:
    """Both servers must return the same document, or the comparison would be meaningless."""
    for path in paths:
        answers = []
        for server in servers:
            response = httpx.get(
                server.base_url + path,
                headers={"Authorization": f"Bearer {token}"},
                timeout=REQUEST_TIMEOUT_SECONDS,
                trust_env=False,
            )
            answers.append(normalized(expect(response, 200, f"{server.name} GET {path}")))
        if any(answer != answers[0] for answer in answers[1:]):
            raise BenchError(f"the servers answer GET {path} differently: {answers}")


def measure(server: Server, path: str, token: str, options: Options) -> dict[str, Any]:
    command = [
        sys.executable,
        "-m",
        "tests.bench",
        "load",
        "--url",
        server.base_url,
        "--path",
        path,
        "--requests",
        str(options.requests),
        "--warmup",
        str(options.warmup),
        "--concurrency",
        str(options.concurrency),
        "--duration",
        str(options.duration),
    ]
    # The token travels in the environment so it never shows up in `ps`.
    env = {**os.environ, "BENCH_TOKEN": token}
    try:
        finished = subprocess.run(
            command,
            env=env,
            cwd=PROJECT_ROOT,
            capture_output=True,
            check=False,
            timeout=WARMUP_SECONDS + options.duration + 2 * REQUEST_TIMEOUT_SECONDS + 30,
        )
    except subprocess.TimeoutExpired:
        raise BenchError(f"the load generator for {server.name} {path} did not finish") from None
    if finished.returncode != 0:
        raise BenchError(
            f"the load generator failed ({finished.returncode}):\n{finished.stderr.decode()}"
        )
    result: dict[str, Any] = json.loads(finished.stdout)
    return result


def run(options: Options) -> int:
    # Imported here so the server and load processes do not load pytest and the test fixtures.
    from tests.conftest import create_database, drop_database
    from tests.processes import CLI, free_port, service_env
    from tests.services import ServicesUnavailableError, namespace, resolve

    try:
        urls = resolve(REQUIRED_SERVICES)
    except ServicesUnavailableError as exc:
        raise BenchError(str(exc)) from None
    load_average = os.getloadavg()[0] if hasattr(os, "getloadavg") else None
    name = f"{SLUG}_{namespace()}_bench_{uuid.uuid4().hex[:6]}"
    secret_key = secrets.token_hex(32)
    workdir = Path(tempfile.mkdtemp(prefix=f"{SLUG}-bench-"))
    progress(f"creating database {name}")
    database_url = asyncio.run(create_database(urls.database, name))
    try:
        full_env = service_env(
            ENVIRONMENT="production",
            SECRET_KEY=secret_key,
            DATABASE_URL=database_url,
{%- if cookiecutter.use_redis == 'y' %}
            REDIS_URL=urls.redis,
{%- endif %}
{%- if cookiecutter.use_celery == 'y' %}
            # Registering and creating the item enqueue follow-up tasks; an in-process broker
            # keeps them out of the shared Redis, where no worker of this run would take them.
            CELERY_BROKER_URL="memory://",
{%- endif %}
            LOG_LEVEL="WARNING",
            RATE_LIMIT_DEFAULT=UNLIMITED_RATE,
            RATE_LIMIT_AUTH=UNLIMITED_RATE,
        )
        progress("db upgrade")
        migrated = subprocess.run(
            [*CLI, "db", "upgrade"], env=full_env, cwd=workdir, capture_output=True, check=False
        )
        if migrated.returncode != 0:
            raise BenchError(f"db upgrade failed:\n{migrated.stderr.decode()}")

        full_port, bare_port = free_port(), free_port()
        bare_env = {
            **os.environ,
            "BENCH_DATABASE_URL": database_url,
            "BENCH_SECRET_KEY": secret_key,
            "PYTHONUNBUFFERED": "1",
        }
        progress("starting both servers")
        with (
            # A scratch directory as cwd, so a developer's .env cannot change the settings.
            running(
                "full",
                [*CLI, "serve", "--port", str(full_port)],
                env=full_env,
                cwd=workdir,
                workdir=workdir,
                port=full_port,
            ) as full,
            running(
                "bare",
                [sys.executable, "-m", "tests.bench", "serve-bare", "--port", str(bare_port)],
                env=bare_env,
                cwd=PROJECT_ROOT,
                workdir=workdir,
                port=bare_port,
            ) as bare,
        ):
            # Readiness, not liveness: the full stack must have reached its database and Redis.
            wait_ready(full, "/health/ready")
            wait_ready(bare, HEALTH_PATH)
            token, authenticated_path = prepare(full.base_url)
            check_same_answers((full, bare), (HEALTH_PATH, authenticated_path), token)

            results: list[Result] = []
            for endpoint, path in (
                (f"GET {HEALTH_PATH}", HEALTH_PATH),
                (f"GET {AUTHENTICATED_ROUTE}", authenticated_path),
            ):
                rows = {server.name: Result(endpoint, server.name) for server in (full, bare)}
                results.extend(rows.values())
                for round_number in range(options.rounds):
                    # full, bare, bare, full, ...: a drift in machine speed (other jobs,
                    # thermal limits) then weighs on both servers alike instead of on one.
                    order = (full, bare) if round_number % 2 == 0 else (bare, full)
                    for server in order:
                        progress(f"{server.name}: {endpoint} (round {round_number + 1})")
                        rows[server.name].add(measure(server, path, token, options))
    finally:
        asyncio.run(drop_database(urls.database, name))
        shutil.rmtree(workdir, ignore_errors=True)

    sys.stdout.write(report(results, options, load_average))
    failed = [result for result in results if result.errors]
    for result in failed:
        statuses = dict(sorted(result.statuses.items()))
        sys.stderr.write(
            f"bench: {result.server} {result.endpoint} answered {statuses}; "
            "the numbers above include failed requests\n"
        )
    return 1 if failed else 0


def report(results: Sequence[Result], options: Options, load_average: float | None) -> str:
    # Other work on the machine moves the numbers more than most changes to the code do.
    busy = f", load average {load_average:.2f} before the run" if load_average is not None else ""
    lines = [
        "",
        f"full: {SLUG} with production settings on {BACKENDS}; "
        "bare: FastAPI + SQLAlchemy + python-jose",
        f"{options.concurrency} connections; {options.rounds} rounds per row, each up to "
        f"{options.requests} requests or {options.duration:g}s after {options.warmup} warm-up "
        "requests",
        f"load from a separate process on loopback; {os.cpu_count()} CPUs{busy}",
        "",
        f"{'endpoint':<28} {'server':<10} {'req/s':>9} {'p50 ms':>8} {'p99 ms':>8} "
        f"{'errors':>7} {'client cpu':>11}",
    ]
    by_key = {(result.endpoint, result.server): result for result in results}
    for endpoint in dict.fromkeys(result.endpoint for result in results):
        full, bare = by_key[endpoint, "full"], by_key[endpoint, "bare"]
        for label, result in ((endpoint, full), ("", bare)):
            lines.append(
                f"{label:<28} {result.server:<10} {result.rps:>9.1f} "
                f"{result.percentile_ms(0.50):>8.2f} {result.percentile_ms(0.99):>8.2f} "
                f"{result.errors:>7} {result.client_cpu:>10.0%}"
            )
        throughput = f"{full.rps / bare.rps:.2f}x"
        p99 = f"{full.percentile_ms(0.99) / bare.percentile_ms(0.99):.2f}x"
        lines.append(f"{'':<28} {'full/bare':<10} {throughput:>9} {'':>8} {p99:>8}")
    lines.append("")
    lines.append(
        "full/bare: throughput below 1x and p99 above 1x are the cost of the stack "
        "(middleware, dependencies, services, validation, metrics)."
    )
    return "\n".join(lines) + "\n"


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


def add_load_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--requests",
        type=positive_int,
        default=3000,
        help="measured requests per round, endpoint and server (default 3000)",
    )
    parser.add_argument(
        "--duration",
        type=positive_float,
        default=2.0,
        help="at most this many seconds per round, whatever --requests says (default 2)",
    )
    parser.add_argument(
        "--concurrency",
        type=positive_int,
        default=16,
        help="concurrent connections (default 16)",
    )
    parser.add_argument(
        "--warmup",
        type=positive_int,
        default=150,
        help=f"unmeasured requests first, at most {WARMUP_SECONDS:g}s (default 150)",
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tests.bench",
        description="Throughput and latency of the full service against a bare FastAPI app.",
    )
    add_load_options(parser)
    commands = parser.add_subparsers(dest="command", help=argparse.SUPPRESS)
    bare = commands.add_parser("serve-bare", help="internal: serve the bare app")
    bare.add_argument("--port", type=int, required=True)
    load = commands.add_parser("load", help="internal: run one measurement, print JSON")
    load.add_argument("--url", required=True)
    load.add_argument("--path", required=True)
    add_load_options(load)
    parser.add_argument(
        "--rounds",
        type=positive_int,
        default=2,
        help="measurements per endpoint and server, alternating the servers (default 2)",
    )
    args = parser.parse_args(argv)

    if args.command == "serve-bare":
        serve_bare(args.port)
        return 0
    if args.command == "load":
        result = run_loop(
            generate_load(
                args.url,
                args.path,
                requests=args.requests,
                warmup=args.warmup,
                concurrency=args.concurrency,
                duration=args.duration,
            )
        )
        sys.stdout.write(json.dumps(result) + "\n")
        return 0
    options = Options(args.requests, args.warmup, args.concurrency, args.duration, args.rounds)
    try:
        return run(options)
    except BenchError as exc:
        sys.stderr.write(f"bench: {exc}\n")
        return 1


if __name__ == "__main__":
    sys.exit(main())

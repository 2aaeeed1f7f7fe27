"""Load generators: wrk when installed, else oha, else a Python client as the last resort.

Each runs in its own process (pinned to its own core by the caller) and returns one Measurement.
wrk gets its request from a Lua script written at run time: the token stays out of `ps`, and the
script's `done` hook prints the figures as one JSON line.
"""

from __future__ import annotations

import asyncio
import json
import math
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

TIMEOUT_SECONDS = 10
# Above this share of one core, a Python client is measuring itself, not the server.
CLIENT_BOUND_CPU = 0.80


@dataclass(frozen=True)
class Target:
    """One request, sent over and over."""

    method: str
    path: str
    token: str | None = None
    body: str | None = None  # JSON


@dataclass(frozen=True)
class Measurement:
    requests: int
    seconds: float
    errors: int  # connection errors and answers other than 2xx
    timeouts: int
    p50_ms: float
    p99_ms: float
    client_cpu: float | None = None  # share of one core; only the Python client reports it

    @property
    def rps(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0


class Generator(Protocol):
    name: str

    def run(
        self,
        url: str,
        target: Target,
        *,
        connections: int,
        seconds: float | None = None,
        requests: int | None = None,
    ) -> Measurement:
        """For `seconds`, or until `requests` have been answered."""
        ...


def pinned(command: Sequence[str], cpu: int | None) -> list[str]:
    """`command` run on one core only, when a core is given and `taskset` exists."""
    if cpu is None or shutil.which("taskset") is None:
        return list(command)
    return ["taskset", "-c", str(cpu), *command]


def _run(command: Sequence[str], *, timeout: float, env: dict[str, str] | None = None) -> str:
    finished = subprocess.run(
        list(command), capture_output=True, text=True, timeout=timeout, env=env, check=False
    )
    if finished.returncode != 0:
        raise RuntimeError(
            f"{command[0]} exited with {finished.returncode}: {finished.stderr.strip()[-2000:]}"
        )
    return finished.stdout


def _lua_string(text: str) -> str:
    """A Lua long-bracket literal that `text` cannot close."""
    level = 0
    while f"]{'=' * level}]" in text:
        level += 1
    return f"[{'=' * level}[{text}]{'=' * level}]"


class Wrk:
    name = "wrk"

    def __init__(self, workdir: Path, cpu: int | None) -> None:
        self.workdir = workdir
        self.cpu = cpu

    def script(self, target: Target, requests: int | None, reached: Path) -> Path:
        lines = [
            f"wrk.method = {_lua_string(target.method)}",
            f"wrk.path = {_lua_string(target.path)}",
        ]
        if target.token:
            lines.append(f'wrk.headers["Authorization"] = {_lua_string("Bearer " + target.token)}')
        if target.body is not None:
            lines.append(f"wrk.body = {_lua_string(target.body)}")
            lines.append('wrk.headers["Content-Type"] = "application/json"')
        if requests is not None:
            # One thread, so a thread-local count is the total: stop once it is reached, and
            # leave a file saying so (`run` then ends wrk's main thread, see there).
            lines += [
                "local answered = 0",
                "response = function(status, headers, body)",
                "  answered = answered + 1",
                f"  if answered == {requests} then",
                "    wrk.thread:stop()",
                f"    local marker = io.open({_lua_string(str(reached))}, 'w')",
                "    if marker then marker:close() end",
                "  end",
                "end",
            ]
        lines += [
            "done = function(summary, latency, requests)",
            "  local e = summary.errors",
            '  io.write(string.format("BENCH_JSON {\\"requests\\": %d, \\"duration_us\\": %d, '
            '\\"errors\\": %d, \\"timeouts\\": %d, \\"p50_us\\": %d, \\"p99_us\\": %d}\\n",',
            "    summary.requests, summary.duration, e.connect + e.read + e.write + e.status,",
            "    e.timeout, latency:percentile(50), latency:percentile(99)))",
            "end",
        ]
        path = self.workdir / f"wrk-{target.method.lower()}-{os.getpid()}-{time.monotonic_ns()}.lua"
        path.write_text("\n".join(lines) + "\n", encoding="utf-8")
        path.chmod(0o600)  # it holds a token
        return path

    def run(
        self,
        url: str,
        target: Target,
        *,
        connections: int,
        seconds: float | None = None,
        requests: int | None = None,
    ) -> Measurement:
        reached = self.workdir / f"wrk-reached-{os.getpid()}-{time.monotonic_ns()}"
        script = self.script(target, requests, reached)
        duration = seconds if seconds is not None else 3600
        command = pinned(
            [
                "wrk",
                "-t1",
                f"-c{connections}",
                f"-d{max(1, math.ceil(duration))}s",
                f"--timeout={TIMEOUT_SECONDS}s",
                "-s",
                str(script),
                url,
            ],
            self.cpu,
        )
        try:
            output = self._until(command, duration, reached)
        finally:
            script.unlink(missing_ok=True)
            reached.unlink(missing_ok=True)
        for line in output.splitlines():
            if line.startswith("BENCH_JSON "):
                data = json.loads(line.removeprefix("BENCH_JSON "))
                return Measurement(
                    requests=data["requests"],
                    seconds=data["duration_us"] / 1e6,
                    errors=data["errors"],
                    timeouts=data["timeouts"],
                    p50_ms=data["p50_us"] / 1000,
                    p99_ms=data["p99_us"] / 1000,
                )
        raise RuntimeError(f"wrk printed no figures:\n{output}")

    @staticmethod
    def _until(command: Sequence[str], duration: float, reached: Path) -> str:
        """wrk's output once it ran `duration` or its script left `reached`.

        A stopped thread does not end wrk: its main thread sleeps out the whole duration. SIGINT
        ends that sleep, and wrk then prints its summary as usual.
        """
        process = subprocess.Popen(
            list(command), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        deadline = time.monotonic() + duration + 120
        while process.poll() is None and time.monotonic() < deadline:
            if reached.exists():
                process.send_signal(signal.SIGINT)
                break
            time.sleep(0.2)
        try:
            stdout, stderr = process.communicate(timeout=max(deadline - time.monotonic(), 10))
        except subprocess.TimeoutExpired:
            process.kill()
            raise
        if process.returncode != 0:
            raise RuntimeError(f"wrk exited with {process.returncode}: {stderr.strip()[-2000:]}")
        return stdout


class Oha:
    name = "oha"

    def __init__(self, cpu: int | None) -> None:
        self.cpu = cpu

    def run(
        self,
        url: str,
        target: Target,
        *,
        connections: int,
        seconds: float | None = None,
        requests: int | None = None,
    ) -> Measurement:
        command = ["oha", "--no-tui", "--output-format", "json", "-c", str(connections)]
        command += ["-t", f"{TIMEOUT_SECONDS}s", "-m", target.method]
        command += ["-n", str(requests)] if requests is not None else ["-z", f"{seconds}s"]
        if target.token:
            command += ["-H", f"Authorization: Bearer {target.token}"]
        if target.body is not None:
            command += ["-d", target.body, "-T", "application/json"]
        started = time.monotonic()
        output = _run(pinned([*command, url], self.cpu), timeout=(seconds or 3600) + 120)
        elapsed = time.monotonic() - started
        data = json.loads(output)
        statuses: dict[str, int] = data.get("statusCodeDistribution", {})
        failures: dict[str, int] = data.get("errorDistribution", {})
        timeouts = sum(n for error, n in failures.items() if "timeout" in error.lower())
        answered = sum(statuses.values())
        percentiles = data.get("latencyPercentiles", {})
        return Measurement(
            requests=answered,
            seconds=data.get("summary", {}).get("total", elapsed),
            errors=sum(n for status, n in statuses.items() if not status.startswith("2"))
            + sum(failures.values())
            - timeouts,
            timeouts=timeouts,
            p50_ms=(percentiles.get("p50") or 0.0) * 1000,
            p99_ms=(percentiles.get("p99") or 0.0) * 1000,
        )


class PythonClient:
    """httpx in a separate process; its CPU share is reported so a saturated client shows."""

    name = "python (httpx)"

    def __init__(self, cpu: int | None) -> None:
        self.cpu = cpu

    def run(
        self,
        url: str,
        target: Target,
        *,
        connections: int,
        seconds: float | None = None,
        requests: int | None = None,
    ) -> Measurement:
        command = [sys.executable, "-m", "tests.bench", "load", "--url", url]
        command += ["--method", target.method, "--path", target.path]
        command += ["--connections", str(connections)]
        if seconds is not None:
            command += ["--seconds", str(seconds)]
        if requests is not None:
            command += ["--requests", str(requests)]
        # The token and body travel in the environment, so they never show up in `ps`.
        env = {**os.environ, "BENCH_TOKEN": target.token or "", "BENCH_BODY": target.body or ""}
        output = _run(pinned(command, self.cpu), timeout=(seconds or 3600) + 120, env=env)
        return Measurement(**json.loads(output))


def choose(preference: str, workdir: Path, cpu: int | None) -> Generator:
    """`auto` takes the first installed of wrk, oha and the Python client."""
    if preference in ("auto", "wrk") and shutil.which("wrk"):
        return Wrk(workdir, cpu)
    if preference in ("auto", "oha") and shutil.which("oha"):
        return Oha(cpu)
    if preference in ("auto", "python"):
        return PythonClient(cpu)
    raise RuntimeError(f"load generator {preference!r} is not installed")


# --------------------------------------------------------------------------------------------
# The Python client itself: `python -m tests.bench load ...` in its own process.


def percentile(ordered: Sequence[float], fraction: float) -> float:
    """Nearest-rank percentile of an ascending sequence."""
    if not ordered:
        return 0.0
    return ordered[max(0, math.ceil(fraction * len(ordered)) - 1)]


async def drive(
    url: str, target: Target, *, connections: int, seconds: float | None, requests: int | None
) -> dict[str, Any]:
    import httpx

    headers = {"Authorization": f"Bearer {target.token}"} if target.token else {}
    if target.body is not None:
        headers["Content-Type"] = "application/json"
    content = target.body.encode() if target.body is not None else None
    limits = httpx.Limits(max_connections=connections, max_keepalive_connections=connections)
    latencies: list[float] = []
    errors = timeouts = 0
    remaining = requests if requests is not None else math.inf
    started = time.perf_counter()
    deadline = started + seconds if seconds is not None else math.inf
    cpu_started = time.process_time()

    async def worker(client: httpx.AsyncClient) -> None:
        nonlocal remaining, errors, timeouts
        while remaining > 0 and time.perf_counter() < deadline:
            remaining -= 1
            sent = time.perf_counter()
            try:
                response = await client.request(target.method, target.path, content=content)
            except httpx.TimeoutException:
                timeouts += 1
                continue
            except httpx.HTTPError:
                errors += 1
                continue
            latencies.append(time.perf_counter() - sent)
            if not response.is_success:
                errors += 1

    async with httpx.AsyncClient(
        base_url=url,
        headers=headers,
        limits=limits,
        timeout=TIMEOUT_SECONDS,
        trust_env=False,  # a proxy from the environment must never sit between us and loopback
    ) as client:
        await asyncio.gather(*(worker(client) for _ in range(connections)))
    elapsed = time.perf_counter() - started
    latencies.sort()
    return {
        "requests": len(latencies),
        "seconds": elapsed,
        "errors": errors,
        "timeouts": timeouts,
        "p50_ms": percentile(latencies, 0.50) * 1000,
        "p99_ms": percentile(latencies, 0.99) * 1000,
        "client_cpu": (time.process_time() - cpu_started) / elapsed,
    }


def generate(
    url: str,
    method: str,
    path: str,
    *,
    connections: int,
    seconds: float | None,
    requests: int | None,
) -> dict[str, Any]:
    target = Target(
        method, path, os.environ.get("BENCH_TOKEN") or None, os.environ.get("BENCH_BODY") or None
    )
    work = drive(url, target, connections=connections, seconds=seconds, requests=requests)
    try:
        import uvloop
    except ImportError:  # not available on Windows
        return asyncio.run(work)
    # The client is the tighter bottleneck on a small machine; uvloop widens it.
    return uvloop.run(work)

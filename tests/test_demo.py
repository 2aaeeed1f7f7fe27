"""`make demo` bakes the default project and serves it on embedded defaults, with API docs.

A second `make demo` bakes afresh but keeps the first one's data; `make demo-clean` removes it.
"""

from __future__ import annotations

import secrets
import subprocess
import uuid
from pathlib import Path

import httpx
import pytest

from tests.support import (
    TEMPLATE_DIR,
    child_environment,
    free_port,
    run,
    start,
    stop,
    wait_for_http,
)


def serve_demo(demo_dir: Path, log: Path) -> tuple[str, subprocess.Popen[bytes]]:
    port = free_port()
    command = ["make", "demo", f"PORT={port}", f"DEMO_DIR={demo_dir}"]
    demo = start(command, cwd=TEMPLATE_DIR, env=child_environment(), log=log)
    base_url = f"http://127.0.0.1:{port}"
    try:
        # The first run installs the baked project's dependencies before serving.
        wait_for_http(f"{base_url}/health/live", process=demo, log=log, timeout=600)
    except BaseException:
        stop(demo)
        raise
    return base_url, demo


@pytest.mark.slow
def test_make_demo_serves_the_api_docs_and_keeps_its_data(tmp_path: Path) -> None:
    demo_dir = tmp_path / "demo"
    credentials = {
        "email": f"demo-{uuid.uuid4().hex[:8]}@example.com",
        "password": secrets.token_urlsafe(16),
    }

    first_log = tmp_path / "first.log"
    base_url, demo = serve_demo(demo_dir, first_log)
    try:
        wait_for_http(f"{base_url}/docs", process=demo, log=first_log)
        registered = httpx.post(f"{base_url}/api/v1/auth/register", json=credentials, timeout=30)
        assert registered.status_code == httpx.codes.CREATED, registered.text
    finally:
        stop(demo)
    assert f"{base_url}/docs" in first_log.read_text()

    second_log = tmp_path / "second.log"
    base_url, demo = serve_demo(demo_dir, second_log)
    try:
        login = httpx.post(f"{base_url}/api/v1/auth/login", json=credentials, timeout=30)
    finally:
        stop(demo)
    assert login.status_code == httpx.codes.OK, login.text
    assert "Keeping the previous demo's data" in second_log.read_text()

    run(["make", "demo-clean", f"DEMO_DIR={demo_dir}"], cwd=TEMPLATE_DIR)
    assert not demo_dir.exists()

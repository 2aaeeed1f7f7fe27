"""`make demo` bakes the default project and serves it on embedded defaults, with API docs."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support import TEMPLATE_DIR, child_environment, free_port, start, stop, wait_for_http


@pytest.mark.slow
def test_make_demo_serves_the_api_docs(tmp_path: Path) -> None:
    port = free_port()
    log = tmp_path / "demo.log"
    command = ["make", "demo", f"PORT={port}", f"DEMO_DIR={tmp_path / 'demo'}"]
    demo = start(command, cwd=TEMPLATE_DIR, env=child_environment(), log=log)
    try:
        # The first run installs the baked project's dependencies before serving.
        wait_for_http(f"http://127.0.0.1:{port}/health/live", process=demo, log=log, timeout=600)
        wait_for_http(f"http://127.0.0.1:{port}/docs", process=demo, log=log)
    finally:
        stop(demo)

    assert f"http://127.0.0.1:{port}/docs" in log.read_text()

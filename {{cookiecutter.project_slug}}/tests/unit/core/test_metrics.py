"""Start-up housekeeping of Prometheus' multiprocess directory."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from {{ cookiecutter.project_slug }}.core.metrics import clear_multiprocess_dir


def test_files_of_other_processes_go_and_this_ones_stay(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(tmp_path))
    own = tmp_path / f"counter_{os.getpid()}.db"
    stale = [tmp_path / "counter_1.db", tmp_path / "histogram_99999999.db"]
    for path in [own, *stale]:
        path.write_bytes(b"\0" * 8)
    (tmp_path / "notes.txt").write_text("not a metrics file")

    assert clear_multiprocess_dir() == 2

    assert sorted(path.name for path in tmp_path.iterdir()) == [own.name, "notes.txt"]


def test_without_the_variable_nothing_is_touched(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PROMETHEUS_MULTIPROC_DIR", raising=False)
    assert clear_multiprocess_dir() == 0

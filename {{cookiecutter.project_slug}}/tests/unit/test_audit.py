"""`make audit`'s accepted-advisory list and its reading of pip-audit's result (the audit itself
needs the vulnerability service and runs as `make audit`)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from tests.audit import (
    AcceptedListError,
    audit_command,
    explain_failure,
    load_accepted,
)

TODAY = dt.date(2026, 12, 2)


def test_the_shipped_list_accepts_nothing() -> None:
    shipped = Path(__file__).parents[2] / "audit-accepted.toml"

    assert load_accepted(shipped.read_text(encoding="utf-8"), today=TODAY) == []


def test_an_advisory_in_force_is_ignored_by_the_audit() -> None:
    text = '[[advisory]]\nid = "GHSA-1"\nreason = "not reachable"\nexpires = 2026-12-02\n'

    accepted = load_accepted(text, today=TODAY)
    command = audit_command("uv", Path("r.txt"), accepted)

    assert [advisory.id for advisory in accepted] == ["GHSA-1"]
    assert command[command.index("--ignore-vuln") + 1] == "GHSA-1"
    assert "--strict" in command


def test_every_problem_in_the_list_is_named_at_once() -> None:
    text = (
        '[[advisory]]\nid = "GHSA-old"\nreason = "r"\nexpires = 2026-12-01\n'
        '[[advisory]]\nid = "GHSA-why"\nexpires = 2027-01-01\n'
        '[[advisory]]\nid = "GHSA-when"\nreason = "r"\nexpires = "soon"\n'
        '[[advisory]]\nreason = "r"\nexpires = 2027-01-01\n'
    )

    with pytest.raises(AcceptedListError) as caught:
        load_accepted(text, today=TODAY)

    message = str(caught.value)
    assert "GHSA-old: accepted until 2026-12-01, which has passed" in message
    assert "GHSA-why: `reason` is missing" in message
    assert "GHSA-when: `expires` must be a date" in message
    assert "advisory 4: `id` is missing" in message


def test_found_vulnerabilities_and_an_unreachable_service_read_differently() -> None:
    found = explain_failure("Found 2 known vulnerabilities in 1 package\nName Version ID")
    unreachable = explain_failure("ConnectionError: Max retries exceeded with url: /pypi/x/json")

    assert found.startswith("vulnerable dependencies")
    assert "audit-accepted.toml" in found
    assert unreachable.startswith("the audit could not run")

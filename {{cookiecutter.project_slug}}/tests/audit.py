"""`make audit`: pip-audit over every locked dependency, with reviewed exceptions.

An advisory that does not apply (or has no fix yet) is accepted in `audit-accepted.toml` with
the reason and a date until which the acceptance holds; after that date the audit fails until
someone reviews it again. The audit asks a vulnerability service (PyPI's JSON API by default,
`AUDIT_SERVICE=osv` for OSV); when the service cannot be reached the audit fails saying so:
an audit that did not run never passes.
"""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys
import tempfile
import tomllib
from dataclasses import dataclass
from pathlib import Path

# Run in a tool environment of its own, so the audit never changes the project's dependencies.
PIP_AUDIT = "pip-audit==2.10.1"
ACCEPTED_FILE = Path("audit-accepted.toml")
FOUND = "known vulnerabilit"  # "Found 2 known vulnerabilities in 1 package"
CLEAN = "No known vulnerabilities found"


@dataclass(frozen=True)
class Accepted:
    id: str
    reason: str
    expires: dt.date


class AcceptedListError(Exception):
    """The accepted-advisory file is malformed or has expired entries; the message says which."""


def load_accepted(text: str, *, today: dt.date) -> list[Accepted]:
    """The accepted advisories still in force; every problem is named at once."""
    entries = tomllib.loads(text).get("advisory", [])
    accepted: list[Accepted] = []
    problems: list[str] = []
    for number, entry in enumerate(entries, 1):
        advisory = entry.get("id")
        reason = entry.get("reason")
        expires = entry.get("expires")
        if not isinstance(advisory, str) or not advisory:
            problems.append(f"advisory {number}: `id` is missing")
            continue
        if not isinstance(reason, str) or not reason.strip():
            problems.append(f"{advisory}: `reason` is missing")
        if not isinstance(expires, dt.date):
            problems.append(f"{advisory}: `expires` must be a date (expires = 2027-01-31)")
        elif expires < today:
            problems.append(f"{advisory}: accepted until {expires}, which has passed; review it")
        else:
            accepted.append(Accepted(advisory, str(reason), expires))
    if problems:
        raise AcceptedListError("\n".join(problems))
    return accepted


def audit_command(uv: str, requirements: Path, accepted: list[Accepted]) -> list[str]:
    command = [
        uv, "tool", "run", "--quiet", "--from", PIP_AUDIT, "pip-audit",
        "--requirement", str(requirements),
        # Every version is pinned and hashed by the lock: no resolver run, no installation.
        "--disable-pip",
        # A dependency that cannot be checked is a failure, not a silent gap.
        "--strict",
        "--progress-spinner", "off",
        "--vulnerability-service", os.environ.get("AUDIT_SERVICE", "pypi"),
    ]  # fmt: skip
    for advisory in accepted:
        command += ["--ignore-vuln", advisory.id]
    return command


def explain_failure(output: str) -> str:
    """What a failed pip-audit run means, for the last line the operator reads."""
    if FOUND in output:
        return (
            "vulnerable dependencies: upgrade them (uv lock --upgrade-package NAME), or accept "
            f"an advisory that does not apply in {ACCEPTED_FILE} with a reason and an expiry date"
        )
    return (
        "the audit could not run: the vulnerability service was unreachable or a dependency "
        "could not be looked up (see above); check network access, or try AUDIT_SERVICE=osv"
    )


def main() -> int:
    uv = os.environ.get("UV", "uv")
    text = ACCEPTED_FILE.read_text(encoding="utf-8") if ACCEPTED_FILE.exists() else ""
    try:
        accepted = load_accepted(text, today=dt.datetime.now(dt.UTC).date())
    except (AcceptedListError, tomllib.TOMLDecodeError) as exc:
        print(f"error: {ACCEPTED_FILE}:\n{exc}", file=sys.stderr)  # noqa: T201
        return 1
    with tempfile.TemporaryDirectory() as folder:
        requirements = Path(folder) / "requirements.txt"
        subprocess.run(
            [uv, "export", "--quiet", "--locked", "--all-groups", "--no-emit-project",
             "--format", "requirements-txt", "--output-file", str(requirements)],
            check=True,
        )  # fmt: skip
        result = subprocess.run(
            audit_command(uv, requirements, accepted),
            capture_output=True,
            text=True,
            check=False,
        )
    output = result.stdout + result.stderr
    print(output, end="")  # noqa: T201
    if result.returncode != 0 or CLEAN not in output:
        print(f"error: {explain_failure(output)}", file=sys.stderr)  # noqa: T201
        return 1
    for advisory in accepted:
        print(f"accepted until {advisory.expires}: {advisory.id} ({advisory.reason})")  # noqa: T201
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""``deploy/``: ``ekinerja-sync-admin`` runs a command as the unit runs the daemon.

systemd is not on the test machines, so ``systemd-run`` is a stub on PATH that writes down
its arguments: the script must hand the command over as given (spaces and all), and the
settings it passes must be the unit's own (user, group, state directory, umask, working
directory, environment and secrets file, the same executable), or a command that works
through the script could fail in the daemon, and the reverse.
"""

from __future__ import annotations

import itertools
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
ADMIN = DEPLOY / "ekinerja-sync-admin"
UNIT = DEPLOY / "ekinerja-sync.service"

# The unit's [Service] settings that make up the daemon's environment: the script sets each.
_SHARED = (
    "User",
    "Group",
    "WorkingDirectory",
    "Environment",
    "EnvironmentFile",
    "StateDirectory",
    "StateDirectoryMode",
    "UMask",
)

_STUB = """#!{python}
import json, sys
with open({out!r}, "w") as f:
    json.dump(sys.argv[1:], f)
"""


def _unit_service() -> dict[str, str]:
    settings: dict[str, str] = {}
    section = ""
    for line in UNIT.read_text().splitlines():
        line = line.strip()
        if line.startswith("[") and line.endswith("]"):
            section = line
        elif section == "[Service]" and "=" in line and not line.startswith("#"):
            key, _, value = line.partition("=")
            settings.setdefault(key, value)  # a repeated key (SystemCallFilter): the first
    return settings


@pytest.fixture
def admin_argv(tmp_path: Path) -> list[str]:
    """The arguments ``systemd-run`` gets from ``ekinerja-sync-admin db upgrade "a b"``."""
    if shutil.which("sh") is None:
        pytest.skip("no POSIX sh")
    out = tmp_path / "argv.json"
    stub = tmp_path / "bin" / "systemd-run"
    stub.parent.mkdir()
    stub.write_text(_STUB.format(python=sys.executable, out=str(out)))
    stub.chmod(0o755)
    env = {**os.environ, "PATH": f"{stub.parent}{os.pathsep}{os.environ.get('PATH', '')}"}
    done = subprocess.run(
        ["sh", str(ADMIN), "status", "--period", "2025-1", "a b"],
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert done.returncode == 0, done.stderr
    argv: list[str] = json.loads(out.read_text())
    return argv


def test_the_command_is_handed_over_as_given(admin_argv: list[str]) -> None:
    unit = _unit_service()
    executable = unit["ExecStart"].split()[0]
    at = admin_argv.index(executable)
    assert admin_argv[at + 1 :] == ["status", "--period", "2025-1", "a b"]
    assert {"--wait", "--pipe", "--collect"} <= set(admin_argv[:at])  # its output, its exit code


def test_the_settings_are_the_units_own(admin_argv: list[str]) -> None:
    unit = _unit_service()
    options = admin_argv[: admin_argv.index(unit["ExecStart"].split()[0])]
    given = dict(
        option.split("=", 1) for flag, option in itertools.pairwise(options) if flag == "-p"
    )
    given["User"] = next(o.split("=", 1)[1] for o in options if o.startswith("--uid="))
    given["Group"] = next(o.split("=", 1)[1] for o in options if o.startswith("--gid="))
    assert {key: given.get(key) for key in _SHARED} == {key: unit[key] for key in _SHARED}

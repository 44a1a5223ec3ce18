"""``deploy/``: ``ekinerja-sync-admin`` runs a command as the unit runs the daemon.

systemd is not on the test machines, so ``systemd-run`` is a stub on PATH that writes down
its arguments: the script must hand the command over as given (spaces and all), and the
settings it passes must be the unit's own (user, group, state directory, umask, working
directory, environment and secrets file, the same executable), or a command that works
through the script could fail in the daemon, and the reverse.

Without systemd (issue 23) it does the same by hand: ``runuser`` is the stub then, and it
must get the same user, the secrets file's variables, the working directory and the umask.
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
    env = {
        **os.environ,
        "PATH": f"{stub.parent}{os.pathsep}{os.environ.get('PATH', '')}",
        "EKINERJA_SYNC_ADMIN": "systemd",  # no systemd on the test machines: say it is there
    }
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


_RUNUSER = """#!{python}
import json, os, sys
mask = os.umask(0)
with open({out!r}, "w") as f:
    json.dump({{"argv": sys.argv[1:], "cwd": os.getcwd(), "umask": mask}}, f)
"""


def _plain(tmp_path: Path, secrets: str | None, *args: str) -> subprocess.CompletedProcess[str]:
    """``ekinerja-sync-admin ARGS`` without systemd, /etc and /var/lib under ``tmp_path``."""
    if shutil.which("sh") is None:
        pytest.skip("no POSIX sh")
    out = tmp_path / "runuser.json"
    stub = tmp_path / "bin" / "runuser"
    stub.parent.mkdir(exist_ok=True)
    stub.write_text(_RUNUSER.format(python=sys.executable, out=str(out)))
    stub.chmod(0o755)
    if secrets is not None:
        (tmp_path / "etc/ekinerja-sync").mkdir(parents=True)
        (tmp_path / "etc/ekinerja-sync/secrets.env").write_text(secrets)
        (tmp_path / "var/lib/ekinerja-sync").mkdir(parents=True)
    env = {
        "PATH": f"{stub.parent}{os.pathsep}{os.environ.get('PATH', '')}",
        "EKINERJA_SYNC_ADMIN": "plain",
        "EKINERJA_SYNC_ADMIN_ROOT": str(tmp_path),
        "EKINERJA_SYNC_TARGET__CLIENT_SECRET": "the caller's, not the service's",
    }
    return subprocess.run(
        ["sh", str(ADMIN), *args], env=env, capture_output=True, text=True, timeout=30
    )


def test_without_systemd_the_same_user_secrets_directory_and_umask(tmp_path: Path) -> None:
    secrets = (
        "# the service's secrets\n"
        "EKINERJA_SYNC_TARGET__CLIENT_ID=dinas\n"
        "\n"
        "EKINERJA_SYNC_TARGET__CLIENT_SECRET=s3cr3t with=signs\n"
        "EKINERJA_SYNC_STATE__URL=postgresql+psycopg://ekinerja:pw@db/ekinerja"  # no newline
    )
    done = _plain(tmp_path, secrets, "status", "--period", "2025-1", "a b", "X=1")
    assert done.returncode == 0, done.stderr
    seen = json.loads((tmp_path / "runuser.json").read_text())
    argv = seen["argv"]
    assert argv[:5] == ["-u", "ekinerja-sync", "--", "env", "-i"]
    executable = _unit_service()["ExecStart"].split()[0]
    at = argv.index(executable)
    assert argv[at + 1 :] == ["status", "--period", "2025-1", "a b", "X=1"]
    environment = dict(a.split("=", 1) for a in argv[5:at])
    assert environment["EKINERJA_SYNC_CONFIG"] == f"{tmp_path}/etc/ekinerja-sync/config.toml"
    assert environment["EKINERJA_SYNC_TARGET__CLIENT_ID"] == "dinas"
    assert environment["EKINERJA_SYNC_TARGET__CLIENT_SECRET"] == "s3cr3t with=signs"
    assert environment["EKINERJA_SYNC_STATE__URL"].endswith("@db/ekinerja")
    assert seen["cwd"] == f"{tmp_path}/var/lib/ekinerja-sync"
    assert seen["umask"] == int(_unit_service()["UMask"], 8)


def test_without_systemd_a_missing_secrets_file_is_one_line(tmp_path: Path) -> None:
    done = _plain(tmp_path, None, "db", "check")
    assert done.returncode == 2
    assert "secrets.env" in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1

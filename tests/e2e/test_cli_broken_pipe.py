"""A reader that goes away (``ekinerja-sync schools actions --csv | head``) ends the command
quietly with 141, as a shell tool killed by SIGPIPE, never with "unexpected BrokenPipeError ...
a bug"."""

from __future__ import annotations

import subprocess
import sys
import textwrap

SCRIPT = textwrap.dedent(
    """
    import typer
    from sync.cli.output import CliGroup

    app = typer.Typer(cls=CliGroup)

    @app.command()
    def spew() -> None:
        for _ in range(200_000):
            print("npsn,nip,what to do " * 4)

    @app.command()
    def other() -> None:
        pass

    app()
    """
)


def test_a_closed_pipe_ends_quietly() -> None:
    process = subprocess.Popen(
        [sys.executable, "-c", SCRIPT, "spew"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert process.stdout is not None
    assert process.stdout.read(100)
    process.stdout.close()  # what `head` does once it has its lines
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == 141, stderr.decode()
    assert b"BrokenPipe" not in stderr
    assert b"bug" not in stderr

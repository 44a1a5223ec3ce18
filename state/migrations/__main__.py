"""``python -m state.migrations``: alembic's command line on the package's migrations.

For developers. The config is made in code (``state.schema.alembic_config``); every alembic
command works::

    python -m state.migrations revision --autogenerate -m "add console users"
    python -m state.migrations history
    python -m state.migrations --url postgresql+psycopg://postgres@127.0.0.1/x upgrade head

Without ``--url`` it runs on a scratch SQLite database that it first brings to head (and then
throws away), so ``revision --autogenerate`` writes exactly what the models have and the
migrations lack (nothing is written when they agree). A new revision is numbered after the
last one (0002, 0003, ...) unless ``--rev-id`` says otherwise. Read what it wrote before
committing it: autogenerate does not see a renamed column (it drops and adds) or a new member
of an enum on PostgreSQL (``ALTER TYPE ... ADD VALUE``, by hand).

Operators use ``ekinerja-sync db upgrade`` instead (serialized, adopts pre-migration stores).
"""

from __future__ import annotations

import tempfile
from collections.abc import Sequence
from pathlib import Path

from alembic import command
from alembic.config import CommandLine
from alembic.script import ScriptDirectory

from state.db import make_engine
from state.schema import alembic_config, upgrade


def next_revision_id(script: ScriptDirectory) -> str:
    """One more than the highest numbered revision, four digits: "0002" after "0001"."""
    numbers = [int(rev.revision) for rev in script.walk_revisions() if rev.revision.isdigit()]
    return f"{max(numbers, default=0) + 1:04d}"


def main(argv: Sequence[str] | None = None) -> None:
    cli = CommandLine(prog="python -m state.migrations")
    cli.parser.add_argument(
        "--url", help="the database to run on (default: a scratch SQLite database at head)"
    )
    options = cli.parser.parse_args(argv)
    if not hasattr(options, "cmd"):
        cli.parser.error("too few arguments")
    if options.cmd[0] is command.revision and getattr(options, "rev_id", None) is None:
        options.rev_id = next_revision_id(ScriptDirectory.from_config(alembic_config()))
    with tempfile.TemporaryDirectory(prefix="ekinerja-migrations-") as scratch:
        engine = make_engine(options.url or f"sqlite:///{Path(scratch) / 'scratch.db'}")
        try:
            if options.url is None:
                upgrade(engine)
            config = alembic_config(engine=engine)
            config.cmd_opts = options
            # A new revision comes out linted and formatted like the rest of the code.
            config.set_section_option("post_write_hooks", "hooks", "ruff_fix, ruff_format")
            for name, args in (
                ("ruff_fix", "check --fix --exit-zero --quiet"),
                ("ruff_format", "format --quiet"),
            ):
                config.set_section_option("post_write_hooks", f"{name}.type", "module")
                config.set_section_option("post_write_hooks", f"{name}.module", "ruff")
                config.set_section_option(
                    "post_write_hooks", f"{name}.options", f"{args} REVISION_SCRIPT_FILENAME"
                )
            if options.url:
                config.set_main_option("sqlalchemy.url", options.url.replace("%", "%%"))
            cli.run_cmd(config, options)
        finally:
            engine.dispose()


if __name__ == "__main__":
    main()

"""Where the time goes: cProfile statistics of an engine run, grouped by pipeline stage.

The groups are cumulative times of the functions that start each stage, made disjoint by
subtraction (they do not nest otherwise):

- on the engine's thread (pull, validate, map, plan, state):
  pull = ``PmmClient._get`` (HTTP to the in-process source, JSON; the mock's own page
  generation is shown apart), validate = ``read_record``, map = the mapping version's
  ``skp_payload`` + ``assessment_payload``, plan = ``plan_record`` + ``plan_cancellation``
  minus map, state = the rest of the run before delivery (SQL, ORM, engine glue), with the
  part spent executing SQL statements (``Connection._execute_context``) shown;
- on the delivery threads (deliver): HTTP (``EkinerjaClient._write``; the mock target apart),
  the ledger append, and the rest (closing the entries, marking the deliverables; the SQL
  statements of the delivery threads are in these last two).
"""

from __future__ import annotations

import cProfile
import pstats
import re
from typing import Any

__all__ = ["GROUPS", "group_of", "summarize"]

GROUPS = ("pull", "validate", "map", "plan", "state (SQL)", "deliver", "other")

_MAPPING_FILE = re.compile(r"mappings/v\d{4}_\d+\.py$")


def _path(filename: str) -> str:
    return filename.replace("\\", "/")


def group_of(key: tuple[str, int, str]) -> str:
    """The stage a function belongs to (for the top-N list), by module."""
    filename, _line, name = key
    path = _path(filename)
    if "/connectors/pmm.py" in path or ("bench/mocks.py" in path and "Pmm" in name):
        return "pull"
    if "/mappings/source.py" in path or "/mappings/identifiers.py" in path or "pydantic" in path:
        return "validate"
    if _MAPPING_FILE.search(path) or "/mappings/target.py" in path or "/mappings/rules.py" in path:
        return "map"
    if "/sync/pipeline/plan.py" in path or "/sync/hashing.py" in path:
        return "plan"
    if any(
        part in path
        for part in ("/sync/delivery/", "/connectors/ekinerja.py", "/sync/ledger_writer.py")
    ):
        return "deliver"
    if "/state/ledger.py" in path:
        return "deliver"
    if "sqlalchemy" in path or "sqlmodel" in path or "/state/" in path or "sqlite3" in name:
        return "state (SQL)"
    if "psycopg" in path:
        return "state (SQL)"
    if "/sync/pipeline/engine.py" in path:
        if name in ("deliver",):
            return "deliver"
        if name in ("_pull_school",):
            return "pull"
        return "state (SQL)"
    return "other"


def _cum(stats: pstats.Stats | None, match: Any) -> float:
    """Sum of cumulative times of the functions ``match(path, name)`` accepts."""
    if stats is None:
        return 0.0
    total = 0.0
    for (filename, _line, name), (_cc, _nc, _tt, ct, _callers) in stats.stats.items():  # type: ignore[attr-defined]
        if match(_path(filename), name):
            total += ct
    return total


def _is(file_part: str, *names: str) -> Any:
    return lambda path, name: path.endswith(file_part) and name in names


def summarize(
    main_profile: cProfile.Profile, worker_profiles: list[cProfile.Profile], top: int
) -> dict[str, Any]:
    """Stage totals and the ``top`` functions by cumulative time (threads merged)."""
    main = pstats.Stats(main_profile)
    workers = pstats.Stats(*worker_profiles) if worker_profiles else None
    run = _cum(main, _is("sync/pipeline/engine.py", "run"))
    deliver_wall = _cum(main, _is("sync/pipeline/engine.py", "deliver"))
    pull = _cum(main, _is("connectors/pmm.py", "_get"))
    source_mock = _cum(main, lambda p, n: p.endswith("bench/mocks.py") and n == "handle")
    validate = _cum(main, _is("mappings/source.py", "read_record"))
    mapping = _cum(
        main,
        lambda p, n: bool(_MAPPING_FILE.search(p)) and n in ("skp_payload", "assessment_payload"),
    )
    plan = _cum(main, _is("sync/pipeline/plan.py", "plan_record", "plan_cancellation")) - mapping
    sql_main = _cum(main, _is("sqlalchemy/engine/base.py", "_execute_context"))
    state = run - deliver_wall - pull - validate - mapping - plan

    d_total = _cum(workers, _is("sync/delivery/deliver.py", "_deliver_claimed"))
    d_http = _cum(workers, _is("connectors/ekinerja.py", "_write", "_send"))
    target_mock = _cum(workers, lambda p, n: p.endswith("bench/mocks.py") and n == "handle")
    d_ledger = _cum(workers, _is("state/ledger.py", "append_many"))
    d_sql = _cum(workers, _is("sqlalchemy/engine/base.py", "_execute_context"))

    groups = {
        "pull": {
            "seconds": pull,
            "note": f"of which the in-process mock source {source_mock:.2f} s",
        },
        "validate": {"seconds": validate, "note": "read_record (pydantic + domain rules)"},
        "map": {"seconds": mapping, "note": "skp_payload + assessment_payload"},
        "plan": {"seconds": plan, "note": "plan_record/plan_cancellation without map"},
        "state (SQL)": {
            "seconds": state,
            "note": f"ingest side: ORM + SQL + glue; SQL statements {sql_main:.2f} s",
        },
        "deliver": {
            "seconds": deliver_wall,
            "note": (
                f"delivery threads: {d_total:.2f} s in all, HTTP {d_http - target_mock:.2f} s "
                f"+ mock target {target_mock:.2f} s, ledger append {d_ledger:.2f} s, rest "
                f"(the loop, closing entries, marking deliverables) "
                f"{d_total - d_http - d_ledger:.2f} s; SQL statements {d_sql:.2f} s of the "
                "last two"
            ),
        },
    }
    merged = pstats.Stats(main_profile, *worker_profiles)
    rows = []
    entries = sorted(
        merged.stats.items(),  # type: ignore[attr-defined]
        key=lambda item: item[1][3],
        reverse=True,
    )
    for key, (_cc, nc, tt, ct, _callers) in entries:
        filename, line, name = key
        path = _path(filename)
        if (
            "threading.py" in path
            or "concurrent/futures" in path
            or name.startswith("<method 'acquire")
        ):
            continue  # waiting, not working
        if "{method 'acquire'" in name or name == "<built-in method _thread.start_new_thread>":
            continue
        short = re.sub(r"^.*?/(site-packages|main)/", "", path)
        rows.append(
            {
                "function": f"{short}:{line}({name})",
                "group": group_of(key),
                "calls": nc,
                "tottime": tt,
                "cumtime": ct,
            }
        )
        if len(rows) >= top:
            break
    return {"run_seconds": run, "groups": groups, "top": rows}

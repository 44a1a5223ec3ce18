"""How a case hands its result to ``bench.cases.run_case``: one JSON object, in the file that
``--json-out`` names, or on stdout when it names none (a person running a case by hand)."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

__all__ = ["write_result"]


def write_result(result: dict[str, Any], json_out: str | None) -> None:
    text = json.dumps(result)
    if json_out:
        Path(json_out).write_text(text, encoding="utf-8")
    else:
        sys.stdout.write(text + "\n")

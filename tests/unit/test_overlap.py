"""Overlap's bookkeeping (issue 28): one summary and one exit code cover both processes, and
the pipe between them carries progress, the summary and a stop."""

from __future__ import annotations

import io
import json
import threading
from collections import Counter

from sync.cli.output import worst_exit_code
from sync.pipeline.overlap import Channel, helper_summary, merge_helper
from sync.pipeline.summary import RunSummary


def test_the_worst_exit_code_of_the_two_processes_wins_in_the_documented_order() -> None:
    assert worst_exit_code(0, 0) == 0
    assert worst_exit_code(4, 1) == 1
    assert worst_exit_code(1, 3) == 3
    assert worst_exit_code(3, 2) == 2
    assert worst_exit_code(0, 4) == 4
    assert worst_exit_code(0, 130) == 130  # not in the order: still not 0


def test_a_helpers_summary_is_added_to_the_runs() -> None:
    helper = RunSummary(run_id="r", period="2025-1", dry_run=False)
    helper.outcomes.update({("skp", "sent_new"): 7, ("assessment", "sent_new"): 3})
    helper.requests_sent = 11
    helper.rate_limited, helper.throttle_wait_s, helper.left_throttled = 2, 1.5, 1
    helper.target_unreachable = "no answer"
    run = RunSummary(run_id="r", period="2025-1", dry_run=False)
    run.outcomes.update({("skp", "sent_new"): 1})
    run.requests_sent = 1
    merge_helper(run, json.loads(json.dumps(helper_summary(helper))))  # through the pipe
    assert run.outcomes == Counter({("skp", "sent_new"): 8, ("assessment", "sent_new"): 3})
    assert run.requests_sent == 12
    assert (run.rate_limited, run.throttle_wait_s, run.left_throttled) == (2, 1.5, 1)
    assert run.throttled
    assert run.target_unreachable == "no answer"


def test_the_channel_reads_the_request_tells_progress_in_batches_and_hears_stop() -> None:
    stdin = io.BytesIO(json.dumps({"period": "2025-1", "run_id": "r"}).encode() + b"\nstop\n")
    stdout = io.BytesIO()
    channel = Channel(stdin, stdout)
    assert channel.request == {"period": "2025-1", "run_id": "r"}
    for _ in range(5):
        channel.progress("deliver", 1)
    channel.flush()
    told = [json.loads(line) for line in stdout.getvalue().splitlines()]
    assert sum(m["progress"][1] for m in told) == 5
    assert len(told) <= 2  # the first at once, the rest together
    stopped = threading.Event()
    channel.watch(stopped.set)
    assert stopped.wait(10)

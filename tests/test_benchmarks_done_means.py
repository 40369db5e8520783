"""benchmarks/done_means.py without timing anything: its verdicts, its table, its command
line (the lead runs the measurements on a quiet machine)."""
from __future__ import annotations

import importlib.util
import sys

import pytest

from support import ROOT

spec = importlib.util.spec_from_file_location("done_means", ROOT / "benchmarks" / "done_means.py")
dm = importlib.util.module_from_spec(spec)
sys.modules["done_means"] = dm  # dataclasses look their module up there
spec.loader.exec_module(dm)


def test_busy_runs_within_twenty_percent_or_flagged_pass():
    quiet = [4.0, 4.5, 5.0]  # median 4.5
    assert dm.busy_verdict(quiet, [(4.5, False), (5.0, False), (9.0, True), (3.7, False)]) \
        == (True, "")


def test_an_unflagged_busy_run_off_by_more_than_twenty_percent_fails_and_is_named():
    ok, why = dm.busy_verdict([4.0], [(4.0, False), (5.0, False), (8.0, False)])
    assert not ok
    assert why == ("run 2: 5 = 1.25x quiet, not flagged; run 3: 8 = 2.00x quiet, not "
                   "flagged (off by 2x or more)")


def test_ratio_and_within_rows_judge_the_ratio():
    row = dm.ratio_row("wall", 4.5, 2.5, "s", 1.8, "medians of 5")
    assert (row.ratio, row.ok, row.measured, row.target) == \
        (1.8, True, "4.5 s vs 2.5 s", "ratio <= 1.8 (medians of 5)")
    assert dm.ratio_row("wall", 5.0, 2.5, "s", 1.8, "").ok is False
    assert dm.within_row("bare", 1.15, 1.0, "s", 0.15).ok is True
    assert dm.within_row("bare", 0.8, 1.0, "s", 0.15).ok is False


def test_the_table_has_a_row_per_check_and_a_detail_line():
    rows = [dm.Row("wall", "4.5 s vs 2.5 s", "ratio <= 1.8", 1.8, True),
            dm.Row("busy", "1, 2", "within", None, False, "run 2: off")]
    assert dm.table(rows) == (
        "| check | measured | target | ratio | verdict |\n"
        "|---|---|---|---|---|\n"
        "| wall | 4.5 s vs 2.5 s | ratio <= 1.8 | 1.80 | pass |\n"
        "| busy | 1, 2 | within |  | FAIL |\n"
        "|  | run 2: off |  |  |  |")


def test_an_unknown_check_is_one_line_naming_the_checks(capsys):
    with pytest.raises(SystemExit) as exit_:
        dm.parse(["--only", "wall,nope"])
    assert exit_.value.code == 2
    assert capsys.readouterr().err.splitlines()[-1] == (
        "done_means.py: error: unknown check 'nope'; choose among: busy, bare, wall, sweep8, "
        "methods")


def test_a_dry_run_prints_every_command_and_measures_nothing(capsys):
    assert dm.main(["--dry-run"]) == 0
    out = capsys.readouterr().out
    commands = [line.strip()[2:] for line in out.splitlines() if line.strip().startswith("$ ")]
    assert sum(c.endswith("-c import torch") for c in commands) == 5
    assert sum("grid.n=1000000 timing.num_threads=2" in c for c in commands) == 3
    assert sum(" -m +sweep=methods " in c for c in commands) == 1
    assert any("timing.enabled=false" in c and "fn=sin,tanh" in c for c in commands)
    assert out.rstrip().endswith("dry run: the commands above, nothing measured")

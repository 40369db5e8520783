"""harness.multirun.manifest: what varies across a sweep's jobs, and whether a job runs,
is skipped as finished, or would overwrite another sweep's run."""
from __future__ import annotations

from harness.multirun.launchers import SINGLE_RUN
from harness.multirun.manifest import JobContext, finished_index, resume_decision, varying_keys
from harness.results import write_record


def job(overrides: list[str], finished_in=None, num: int = 0) -> JobContext:
    return JobContext(num, 4, overrides, overrides, SINGLE_RUN, finished_in)


def test_varying_keys_are_the_overrides_with_more_than_one_value():
    jobs = [["fn=sin", "method=autograd", "grid.n=60"], ["fn=tanh", "method=autograd", "grid.n=60"],
            ["fn=sin", "method=loop", "grid.n=60"]]
    assert varying_keys(jobs) == ["fn", "method"]


def test_a_job_shows_its_place_in_the_sweep():
    assert job(["fn=sin"], num=2).tag == "[3/4]"
    assert JobContext(0, None, [], [], SINGLE_RUN, None).tag == "[1/?]"


def test_a_new_job_runs(tmp_path):
    assert resume_decision(job(["fn=sin"]), tmp_path, tmp_path / "0_sin") == ("run", None)


def test_a_job_finished_anywhere_in_the_sweep_is_skipped(tmp_path):
    write_record(tmp_path / "7_sin", {"overrides": "fn=sin method=loop"})
    index = finished_index(tmp_path)
    assert index == {'["fn=sin", "method=loop"]': "7_sin"}
    context = job(["method=loop", "fn=sin"], finished_in=index['["fn=sin", "method=loop"]'])
    assert resume_decision(context, tmp_path, tmp_path / "0_sin") == ("skip", tmp_path / "7_sin")


def test_a_folder_holding_another_jobs_run_is_a_conflict(tmp_path):
    write_record(tmp_path / "0_sin", {"overrides": "fn=tanh"})
    assert resume_decision(job(["fn=sin"]), tmp_path, tmp_path / "0_sin") == \
        ("conflict", tmp_path / "0_sin")

"""harness.compare: NEW against OLD per configuration, and --fail-if as a regression gate.

The gate's logic runs on hand-made records with exact numbers; the command runs on real
stored sweeps (a small one made by the Python API, then copied and altered on disk)."""
from __future__ import annotations

import json
import shutil
import subprocess
import sys

import pandas as pd
import pytest

import harness as dydx
from harness.compare import comparison, main
from harness.config.validate import ConfigError
from support import ROOT

FINITE = json.dumps({"scheme": "central", "h": None})


def record(fn="sin", method="autograd", dtype="float32", **columns) -> dict:
    """A stored record with the columns the comparison reads, ok and timed."""
    return {"fn": fn, "method": method, "method_params": FINITE if method == "finite" else "{}",
            "order": 1, "dtype": dtype, "device": "cpu", "n": 2000, "status": "ok",
            "status_reason": "", "max_ulp": 2.0, "max_abs_err": 1e-7, "median_ulp": 0.5,
            "time_median_s": 1e-3, "time_iqr_s": 2e-5, "time_noisy": False, "host": "a",
            **columns}


def frame(*records: dict) -> pd.DataFrame:
    return pd.DataFrame(list(records))


def test_equal_records_pass_with_ratio_one_everywhere():
    old = frame(record(), record(method="finite", max_ulp=6e3))
    c = comparison(old, old.copy(), ["max_ulp>1.5x", "time>1.2x", "missing"])
    assert c.ok and c.exit_status == 0 and c.failures == ()
    assert list(c.table["max_ulp_ratio"]) == [1.0, 1.0] == list(c.table["time_median_s_ratio"])
    assert c.only_old.empty and c.only_new.empty


def test_a_planted_accuracy_regression_fails_and_names_its_row():
    old = frame(record(), record(fn="tanh", method="finite", max_ulp=4.0))
    new = frame(record(), record(fn="tanh", method="finite", max_ulp=12.0))
    c = comparison(old, new, ["max_ulp>1.5x"])
    assert not c.ok and c.exit_status == 1
    assert c.failures == ("tanh | finite | float32: max_ulp>1.5x: max_ulp 4 → 12 (3×)",)


def test_an_absolute_rule_reads_news_own_value():
    old = frame(record(n_wrong=0), record(fn="tanh", n_wrong=0))
    new = frame(record(n_wrong=0), record(fn="tanh", n_wrong=3))
    c = comparison(old, new, ["n_wrong>0"])
    assert c.failures == ("tanh | autograd | float32: n_wrong>0: n_wrong 0 → 3 (∞)",)
    assert list(c.table["n_wrong_new"]) == [0, 3]  # shown once either side has the column


def test_an_absolute_rule_reads_new_even_when_old_lacks_the_column():
    old = frame(record())  # a baseline stored before the records had n_wrong
    new = frame(record(n_wrong=2))
    c = comparison(old, new, ["n_wrong>0"])
    assert c.failures == ("sin | autograd | float32: n_wrong>0: n_wrong — → 2 (—)",)


def test_a_slowdown_inside_the_timing_noise_is_noted_not_failed():
    # OLD's middle half is 1.0 ms ± 0.05 ms, NEW's 1.08 ms ± 0.05 ms: they overlap.
    old = frame(record(time_median_s=1.0e-3, time_iqr_s=1e-4))
    new = frame(record(time_median_s=1.08e-3, time_iqr_s=1e-4))
    c = comparison(old, new, ["time>1.05x"])
    assert c.ok
    assert c.notes == ("sin | autograd | float32: time>1.05x: time_median_s 0.001 → 0.00108 "
                       "(1.08×), not counted: inside the timing noise (the two middle halves "
                       "overlap)",)
    assert list(c.table["within_noise"].map(len)) == [1]


def test_a_slowdown_measured_noisily_is_noted_not_failed():
    # Apart by their middle halves, but OLD is flagged noisy: a gate on it would flake.
    old = frame(record(time_median_s=1.0e-3, time_iqr_s=1.5e-4, time_noisy=True))
    new = frame(record(time_median_s=2.0e-3, time_iqr_s=1e-5))
    c = comparison(old, new, ["time>1.2x"])
    assert c.ok
    assert c.notes[0] == "sin | autograd | float32: time>1.2x: time_median_s 0.001 → 0.002 " \
                         "(2×), not counted: a side's timing is not trustworthy (time_noisy: " \
                         "noisy or contended); rerun on a quieter machine"
    assert c.notes[1].startswith("1 timings are not trustworthy (marked ‡")


def test_a_slowdown_beyond_the_timing_noise_fails():
    old = frame(record(time_median_s=1.0e-3, time_iqr_s=2e-5))
    new = frame(record(time_median_s=1.25e-3, time_iqr_s=2e-5))
    c = comparison(old, new, ["time>1.2x"])
    assert c.failures == ("sin | autograd | float32: time>1.2x: time_median_s 0.001 → "
                          "0.00125 (1.25×)",)


def test_a_slowdown_timed_in_too_few_blocks_is_noted_not_failed():
    old = frame(record(time_median_s=1.0e-3, time_iqr_s=1e-6, raw_times_s=[1e-3] * 3))
    new = frame(record(time_median_s=2.0e-3, time_iqr_s=1e-6, raw_times_s=[2e-3] * 3))
    c = comparison(old, new, ["time>1.2x"])
    assert c.ok and c.notes[0].startswith("sin | autograd | float32: time>1.2x: "
                                          "time_median_s 0.001 → 0.002 (2×), not counted: a "
                                          "side has fewer than 4 timed blocks")
    assert "0.002 s ±?" in str(c)


def test_a_configuration_that_fails_only_in_new_always_fails_the_gate():
    old = frame(record())
    new = frame(record(status="error", status_reason="RuntimeError: boom", max_ulp=float("nan")))
    c = comparison(old, new)
    assert c.failures == ("sin | autograd | float32: status ok → error: RuntimeError: boom",)


def test_disjoint_configurations_are_listed_and_fail_only_when_asked():
    old, new = frame(record(fn="sin")), frame(record(fn="cos"))
    c = comparison(old, new, ["max_ulp>1.5x"])
    assert c.ok and c.table.empty
    assert list(c.only_old["fn"]) == ["sin"] and list(c.only_new["fn"]) == ["cos"]
    gated = comparison(old, new, ["missing"])
    assert gated.failures == ("sin | autograd | float32: missing: no record in NEW",)


def test_method_parameters_are_part_of_a_configuration():
    h3, h4 = json.dumps({"scheme": "central", "h": 1e-3}), json.dumps({"h": 1e-4, "scheme": "central"})
    old = frame(record(method="finite", method_params=h3), record(method="finite", method_params=h4))
    new = frame(record(method="finite", method_params=h4, max_ulp=3.0),
                record(method="finite", method_params=h3))
    c = comparison(old, new, ["max_ulp>1.4x"])
    assert len(c.table) == 2 and sorted(c.table["label"]) == ["finite h=0.0001", "finite h=0.001"]
    assert c.failures == ("sin | finite h=0.0001 | float32: max_ulp>1.4x: max_ulp 2 → 3 (1.5×)",)


def test_different_hosts_are_said_next_to_the_timings():
    c = comparison(frame(record(host="a")), frame(record(host="b")))
    assert c.notes == ("timings come from different hosts (a against b): their ratios measure "
                       "the machines as well as the code",)


@pytest.mark.parametrize("rule, message", [
    ("max_ulp>>2", "--fail-if 'max_ulp>>2': a rule reads METRIC>VALUE (NEW's value, e.g. "
                   "n_wrong>0), METRIC>VALUEx (NEW/OLD, e.g. max_ulp>1.5x, time>1.2x) with >, "
                   ">=, < or <=, or 'missing'"),
    ("time>fast", "--fail-if 'time>fast': a rule reads METRIC>VALUE (NEW's value, e.g. "
                  "n_wrong>0), METRIC>VALUEx (NEW/OLD, e.g. max_ulp>1.5x, time>1.2x) with >, "
                  ">=, < or <=, or 'missing'"),
])
def test_a_rule_that_does_not_parse_says_how_rules_read(rule, message):
    with pytest.raises(ConfigError) as err:
        comparison(frame(record()), frame(record()), [rule])
    assert str(err.value) == message


def test_a_rule_on_a_column_the_records_lack_names_the_columns_they_have():
    with pytest.raises(ConfigError) as err:
        comparison(frame(record()), frame(record()), ["n_wrong>0"])
    assert str(err.value) == ("--fail-if 'n_wrong>0': the records have no column 'n_wrong'; "
                              "numeric columns: time (= time_median_s), max_abs_err, max_ulp, "
                              "median_ulp, n, order, time_iqr_s, time_median_s")


# --- the command, on stored sweeps ----------------------------------------------------------

@pytest.fixture(scope="module")
def stored(tmp_path_factory, reference_cache):
    """A small real sweep stored by the API: sin, tanh x autograd, finite in float32, timed
    briefly (the tests compare timings only between copies of this one sweep, so a short
    max_run_time, instead of the default 2 s per run, checks the same)."""
    folder = tmp_path_factory.mktemp("compare") / "old"
    dydx.sweep(fn=["sin", "tanh"], method=["autograd", "finite"], dtype="float32",
               grid=dict(n=101), timing=dict(min_run_time=0.01, max_run_time=0.1), out=folder,
               quiet=True,
               reference=dict(cache_dir=str(reference_cache)))
    return folder


def altered(stored, tmp_path, job: str, **columns):
    folder = tmp_path / "new"
    shutil.copytree(stored, folder)
    path = folder / job / "records.parquet"
    table = pd.read_parquet(path)
    for column, value in columns.items():
        table[column] = value(table[column].iloc[0]) if callable(value) else value
    table.to_parquet(path, index=False)
    return folder


def test_equal_sweeps_exit_0(stored, capsys):
    assert main([str(stored), str(stored), "--fail-if", "max_ulp>1.5x", "--fail-if",
                 "time>1.2x"]) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"dydx compare: {stored} (NEW) against {stored} (OLD): "
                          f"4 configurations in both, 0 only in OLD, 0 only in NEW")
    assert "PASS: no rule fired (rules: max_ulp>1.5x, time>1.2x;" in out


def test_a_planted_regression_exits_1_and_names_the_row(stored, tmp_path, capsys):
    new = altered(stored, tmp_path, "3_tanh_finite_float32", max_ulp=lambda v: 3 * v)
    old_ulp = pd.read_parquet(stored / "3_tanh_finite_float32" / "records.parquet")["max_ulp"][0]
    assert main([str(stored), str(new), "--fail-if", "max_ulp>1.5x"]) == 1
    out = capsys.readouterr().out
    line = next(l for l in out.splitlines() if l.startswith("  tanh | finite | float32: "))
    assert line.startswith("  tanh | finite | float32: max_ulp>1.5x: max_ulp ")
    assert line.endswith("(3×)") and f"{old_ulp:.3g} → {3 * old_ulp:.3g}" in line
    assert out.count("  tanh | finite") == 1 and "FAIL: 1 breaches" in out


def test_disjoint_sweeps_list_each_sides_configurations(stored, tmp_path, capsys):
    other = tmp_path / "other"
    shutil.copytree(stored, other)
    for job in other.glob("*_sin_*"):
        shutil.rmtree(job)
    (other / "summary.parquet").unlink()
    assert main([str(other), str(stored)]) == 0
    out = capsys.readouterr().out
    assert "2 configurations in both, 0 only in OLD, 2 only in NEW" in out
    assert "only in NEW (2):\n  sin | autograd | float32\n  sin | finite | float32" in out
    assert main([str(stored), str(other), "--fail-if", "missing"]) == 1
    assert "  sin | autograd | float32: missing: no record in NEW" in capsys.readouterr().out


def test_stored_summaries_compare_like_their_folders(stored, tmp_path, capsys):
    csv = tmp_path / "table.csv"
    assert main([str(stored / "summary.csv"), str(stored / "summary.parquet"),
                 "--csv", str(csv)]) == 0
    table = pd.read_csv(csv)
    assert len(table) == 4 and (table["max_ulp_ratio"] == 1.0).all()


def test_input_that_cannot_be_compared_exits_2_with_one_line(tmp_path, capsys):
    assert main([str(tmp_path), str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err == f"dydx: error: no finished runs under {tmp_path} (a run is finished when " \
                  f"its folder holds records.parquet)\n"


def test_the_api_gives_the_same_comparison(stored, tmp_path):
    new = altered(stored, tmp_path, "0_sin_autograd_float32", max_abs_err=lambda v: 2 * v)
    c = dydx.comparison(dydx.load(stored), new, fail_if=["max_abs_err>1.5x"])
    assert [line.split(":")[0] for line in c.failures] == ["sin | autograd | float32"]
    assert str(c).splitlines()[0].startswith(f"dydx compare: {new} (NEW) against {stored} (OLD)")


@pytest.mark.slow
def test_python_m_harness_compare_is_the_command(stored):
    done = subprocess.run([sys.executable, "-m", "harness.compare", str(stored), str(stored),
                           "--fail-if", "nope"], capture_output=True, text=True, cwd=ROOT)
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr.startswith("dydx: error: --fail-if 'nope': a rule reads")

"""harness.study.hunt: the search's pieces with exact expected values, a synthetic peak it
must climb, and planted ops (tests/planted.py) whose bad region it must find."""
from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
import torch

from harness.study.flow import run_study
from harness.study.metrics import verdicts
from harness.study.hunt import (Bracket, hunt, narrow, neighbours, scores, seed_brackets,
                                spread, wrong)
from harness.study.settings import HuntConf
from planted import SPIKE, WRONG_BEYOND, binade_neighbours, planted_study


def table(x, df, ref, excluded=None) -> pd.DataFrame:
    x, df, ref = (np.asarray(v, dtype=float) for v in (x, df, ref))
    err = np.abs(df - ref)
    excluded = np.array(excluded if excluded is not None else [""] * len(x), dtype=object)
    return pd.DataFrame({"x": x, "df": df, "df_ref": ref, "abs_err": err,
                         "ulp_err": err / np.spacing(np.abs(ref)), "excluded": excluded,
                         "verdict": verdicts(df, ref, np.zeros_like(ref), excluded != "",
                                             torch.float64)})


# --- the pieces -------------------------------------------------------------------------

def test_neighbours_are_the_adjacent_floats_of_the_dtype():
    assert neighbours(1.0, torch.float32, 2) == [1 - 2.0**-24, 1 - 2.0**-23,
                                                 1 + 2.0**-23, 1 + 2.0**-22]
    assert neighbours(0.0, torch.float64, 1) == [-5e-324, 5e-324]


def test_neighbours_of_the_largest_float_stop_at_the_range():
    top = torch.finfo(torch.float16).max
    assert neighbours(top, torch.float16, 1) == [65472.0]


def test_spread_is_even_in_log2_within_one_sign_and_linear_across_zero():
    assert spread(1.0, 16.0, 3, torch.float64) == [2.0, 4.0, 8.0]
    assert spread(-16.0, -1.0, 3, torch.float64) == [-8.0, -4.0, -2.0]
    assert spread(-1.0, 1.0, 3, torch.float64) == [-0.5, 0.0, 0.5]
    assert spread(1.0, 1.0, 3, torch.float64) == []


def test_spread_rounds_to_the_dtype_and_keeps_points_strictly_inside():
    lo, hi = 1.0, 1 + 2.0**-10
    assert spread(lo, hi, 5, torch.bfloat16) == []  # no bfloat16 between them


def test_score_ranks_non_finite_results_first_and_never_excluded_points():
    t = table([1.0, 2.0, 3.0, 4.0], [1.0, np.nan, 3.5, 100.0], [1.0, 2.0, 3.0, 4.0],
              ["", "", "", "domain"])
    s = scores(t)
    assert s[1] == np.inf and s[3] == -np.inf and s[0] == 0.0
    assert s[2] == 0.5 / np.spacing(3.0)


def test_wrong_means_no_correct_leading_digit():
    t = table([1, 2, 3, 4, 5], [0.0, -2.0, 2.9, np.inf, 0.0], [1e-30, 2.0, 3.0, 4.0, 0.0])
    assert list(wrong(t)) == [True, True, False, False, False]  # inf is `nonfinite`


def test_seed_brackets_are_the_worst_points_with_their_grid_neighbours():
    t = table([0.0, 1.0, 2.0, 3.0, 4.0], [0, 1, 2 + 1e-10, 3, 4 + 1e-3], [0, 1, 2, 3, 4])
    assert seed_brackets(t, 2) == [Bracket(3.0, 4.0, 4.0), Bracket(1.0, 2.0, 3.0)]


def test_narrow_moves_the_bracket_to_the_new_worst_point_and_its_neighbours():
    t = table([1.0, 1.5, 2.0, 2.5, 3.0], [1, 1.5 + 1e-6, 2, 2.5, 3], [1, 1.5, 2, 2.5, 3])
    assert narrow(Bracket(1.0, 2.0, 3.0), t) == Bracket(1.0, 1.5, 2.0)


def peak_evaluate(center: float):
    """A fake study whose error is 1/|x - center| (relative), for the search alone."""
    def evaluate(x: np.ndarray) -> pd.DataFrame:
        ref = np.ones_like(x)
        with np.errstate(divide="ignore"):
            df = ref * (1 + 2.0**-40 / np.abs(x - center))
        return table(x, df, ref)
    return evaluate


def test_hunt_climbs_a_peak_between_grid_points_to_the_float_at_its_top():
    center = 1 + 2.0**-30  # no grid point near it
    grid = np.linspace(0.5, 2.0, 7)
    evaluate = peak_evaluate(center)
    found = hunt(evaluate, evaluate(grid), torch.float64, HuntConf(rounds=30, seeds=1, probes=8))
    best = found.iloc[int(np.argmax(scores(found)))]
    assert best["x"] == center  # its error is infinite there: 1 / 0
    assert found["round"].max() <= 30 and len(found) == len(set(found["x"]))


def test_hunt_with_no_rounds_evaluates_nothing():
    evaluate = peak_evaluate(1.3)
    assert hunt(evaluate, evaluate(np.linspace(1, 2, 5)), torch.float64,
                HuntConf(rounds=0)).empty


# --- planted ops through the study ------------------------------------------------------

@pytest.fixture(scope="module")
def planted(tmp_path_factory, reference_cache):
    """name -> record of the planted op by autograd in float64 on binades (2 per binade)."""
    run_dir = tmp_path_factory.mktemp("planted")
    return {name: run_study(planted_study(name, reference_cache), run_dir, log=lambda _: None).record
            for name in ("unstable_expm1", "wrong_sinh_beyond", "spike_sin", "right_sin")}


def test_hunt_finds_where_an_unstable_backward_returns_zero(planted):
    r = planted["unstable_expm1"]
    # (y + 1) with y = expm1(x) rounds to 0 once e^x < 2^-53, i.e. x < -36.7.
    assert r["worst_x"] < -36.7 and r["value_at_worst"] == 0.0
    assert r["reference_at_worst"] == pytest.approx(math.exp(r["worst_x"]), rel=1e-15)
    assert r["worst_ulp"] > 2.0**51
    assert r["n_wrong_hunt"] > 0 and r["n_hunt"] > 0


def test_hunt_finds_a_backward_wrong_only_beyond_some_x_and_calls_it_mismatch(planted):
    r = planted["wrong_sinh_beyond"]
    assert abs(r["worst_x"]) > WRONG_BEYOND
    assert r["value_at_worst"] == pytest.approx(2 * r["reference_at_worst"], rel=1e-15)
    assert r["worst_ulp"] > 2.0**50 and r["worst_triage"] == "mismatch"


def test_hunt_closes_in_on_a_spike_between_grid_points(planted):
    r = planted["spike_sin"]
    lo, hi = binade_neighbours(SPIKE, 2)
    assert lo < SPIKE < hi  # the grid itself never lands near the spike
    assert abs(r["worst_x"] - SPIKE) < (hi - lo) / 50
    assert r["worst_ulp"] > 20 * r["max_ulp"]  # far worse than the grid's worst


def test_a_correct_op_stays_within_a_few_ulp_after_the_hunt(planted):
    r = planted["right_sin"]
    assert r["worst_ulp"] <= 1.0 and r["max_ulp"] <= 1.0
    assert r["n_wrong_hunt"] == 0 and r["worst_triage"] == ""


def test_longer_hunt_reaches_the_spike_itself(reference_cache, tmp_path):
    study = planted_study("spike_sin", reference_cache, hunt=HuntConf(rounds=30, seeds=1))
    r = run_study(study, tmp_path, log=lambda _: None).record
    assert r["worst_x"] == SPIKE and r["worst_ulp"] == math.inf  # backward divides by 0


def test_cross_check_says_which_method_gets_the_worst_point_right(planted):
    r = planted["unstable_expm1"]
    # The complex step never calls the planted backward: it is the workaround here.
    assert r["ulp_at_worst_autograd"] == r["worst_ulp"]
    assert r["ulp_at_worst_complex_step"] <= 1.0
    # torch.func cannot run an autograd.Function without a jvp rule: no answer, not a guess.
    assert math.isnan(r["ulp_at_worst_forward_ad"])

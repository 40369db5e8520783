"""The worst-case hunt: after the grid, search near its worst points for larger errors.

A grid samples; a derivative's largest error often sits between its points (a spike near a
root, the first |x| at which a backward loses every digit). Starting from the `seeds` worst
checked points, each round evaluates the method and the reference at new points near each
current worst: its 8 neighbouring floats in the run's dtype (±1..±4 units in the last
place) and `probes` points spread over its bracket, the interval between its neighbours
among the points evaluated so far (evenly in log2|x| when the bracket keeps one sign, else
evenly in x). Each bracket then narrows to the neighbours of its new worst point.

A point's score is its ULP error; a non-finite result where the reference is finite scores
+inf (the worst there is); excluded points (domain, kink, beyond the dtype's range, an
uncertified reference) and errors the reference cannot resolve never lead. This is a
local search, not a proof: it finds the worst point of each basin it starts in, and
`n_hunt` says what it cost. Pure: the caller supplies `evaluate(x) -> points table`.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import numpy as np
import pandas as pd
import torch

from harness.study.settings import HuntConf

# Floats on each side of a worst point probed per round.
NEIGHBOURS = 4


@dataclass(frozen=True)
class Bracket:
    lo: float
    best: float
    hi: float


def scores(points: pd.DataFrame) -> np.ndarray:
    """Per point: its ULP error; +inf for a non-finite result where the reference is finite;
    -inf for a point that cannot lead: excluded, or an error the reference cannot resolve
    (verdicts: harness.study.metrics)."""
    verdict = points["verdict"].to_numpy()
    score = np.where(verdict == "nonfinite", np.inf, points["ulp_err"].to_numpy(float))
    cannot = np.isin(verdict, ("excluded", "reference_limited")) | np.isnan(score)
    return np.where(cannot, -np.inf, score)


def neighbours(x: float, dtype: torch.dtype, k: int = NEIGHBOURS) -> list[float]:
    """The k floats of `dtype` on each side of x (x itself a value of dtype)."""
    found = []
    for direction in (-math.inf, math.inf):
        at = torch.tensor([x], dtype=torch.float64).to(dtype)
        toward = torch.full_like(at, direction)
        for _ in range(k):
            at = torch.nextafter(at, toward)
            found.append(float(at.double().item()))
    return [v for v in found if math.isfinite(v)]


def spread(lo: float, hi: float, m: int, dtype: torch.dtype) -> list[float]:
    """m points strictly inside (lo, hi), evenly in log2|x| when lo and hi share a sign
    (and neither is 0), else evenly in x; rounded to dtype."""
    if not lo < hi or m < 1:
        return []
    if lo > 0 or hi < 0:
        sign = 1.0 if lo > 0 else -1.0
        ends = np.log2([abs(lo), abs(hi)])
        inside = sign * np.exp2(np.linspace(ends[0], ends[1], m + 2)[1:-1])
    else:
        inside = np.linspace(lo, hi, m + 2)[1:-1]
    rounded = torch.tensor(inside, dtype=torch.float64).to(dtype).double().numpy()
    return [float(v) for v in rounded if lo < v < hi]


def seed_brackets(points: pd.DataFrame, count: int) -> list[Bracket]:
    """The `count` best-scoring points (that can lead), each with its grid neighbours."""
    ordered = points.sort_values("x", kind="stable").reset_index(drop=True)
    score = scores(ordered)
    x = ordered["x"].to_numpy(float)
    leaders = [i for i in np.argsort(-score, kind="stable")[:count] if score[i] > -np.inf]
    return [Bracket(x[max(i - 1, 0)], x[i], x[min(i + 1, len(x) - 1)]) for i in leaders]


def narrow(bracket: Bracket, evaluated: pd.DataFrame) -> Bracket:
    """The bracket's new worst point among everything evaluated inside it, and its
    nearest evaluated neighbours on each side."""
    x = evaluated["x"].to_numpy(float)
    inside = (x >= bracket.lo) & (x <= bracket.hi)
    xs, score = x[inside], scores(evaluated[inside])
    best = xs[np.argmax(score)] if score.size and score.max() > -np.inf else bracket.best
    below, above = xs[xs < best], xs[xs > best]
    return Bracket(below.max() if below.size else bracket.lo, best,
                   above.min() if above.size else bracket.hi)


def probes(bracket: Bracket, dtype: torch.dtype, m: int) -> list[float]:
    return neighbours(bracket.best, dtype) + spread(bracket.lo, bracket.hi, m, dtype)


def hunt(evaluate: Callable[[np.ndarray], pd.DataFrame], points: pd.DataFrame,
         dtype: torch.dtype, conf: HuntConf) -> pd.DataFrame:
    """Rounds of local search from the grid's worst points; the points it evaluated
    (columns as `evaluate` gives them, plus `round`), empty when there was nothing to do."""
    brackets = seed_brackets(points, conf.seeds)
    seen = {float(v) for v in points["x"]}
    found: list[pd.DataFrame] = []
    for round_ in range(conf.rounds):
        new = sorted({v for b in brackets for v in probes(b, dtype, conf.probes)} - seen)
        if not new:
            break
        table = evaluate(np.array(new, dtype=np.float64)).assign(round=round_ + 1)
        found.append(table)
        seen.update(new)
        evaluated = pd.concat([points, *found], ignore_index=True)
        brackets = [narrow(b, evaluated) for b in brackets]
    return pd.concat(found, ignore_index=True) if found else pd.DataFrame()


def wrong(points: pd.DataFrame) -> np.ndarray:
    """Points whose verdict is `wrong`: no correct leading digit (harness.study.metrics)."""
    return points["verdict"].to_numpy() == "wrong"


def worst_x(points: pd.DataFrame, hunted: pd.DataFrame) -> float:
    """x of the highest-scoring point over the grid and the hunt (NaN if none can lead)."""
    both = pd.concat([points, hunted], ignore_index=True) if len(hunted) else points
    score = scores(both) if len(both) else np.array([])
    if not score.size or score.max() == -np.inf:
        return math.nan
    return float(both["x"].iloc[int(np.argmax(score))])


def at_worst_columns(table: pd.DataFrame | None) -> dict:
    """value_at_worst, reference_at_worst, worst_ulp (+inf for a non-finite value, NaN
    where excluded) and worst_triage (its class), from the one-row points table at worst_x."""
    if table is None or table.empty:
        return {"value_at_worst": math.nan, "reference_at_worst": math.nan,
                "worst_ulp": math.nan, "worst_triage": ""}
    row, score = table.iloc[0], float(scores(table)[0])
    return {"value_at_worst": float(row["df"]), "reference_at_worst": float(row["df_ref"]),
            "worst_ulp": score if score > -math.inf else math.nan,
            "worst_triage": str(row.get("triage", "") or "")}

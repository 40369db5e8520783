"""The multirun side of dydx: the sweep manifest, resume, launcher context, aggregation.

A sweep is one `python run.py -m ...`. When it starts, `SweepCallback.on_multirun_start`
expands the job list exactly as Hydra's BasicSweeper will, and writes it with an index of
the runs already finished in the sweep folder to `sweep.json`. Each job reads that file to
know its place (index/total), whether it already ran (resume), and how many jobs share the
machine with it (timing contention). When the sweep ends, `on_multirun_end` gathers every
finished record under the folder and writes the summary tables and the report. Hydra calls
both hooks in the submitting process for every launcher, so this works the same with the
basic, joblib and submitit launchers; nothing here schedules jobs.

Pure pandas tables over the gathered records (pivots, headline ratios, the step-size
model) live here too; harness.report turns them into words, figures and files.
"""
from __future__ import annotations

import json
import math
import os
import shlex
import sys
import threading
import time
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Callable, Iterator, Optional

import numpy as np
import pandas as pd
import torch
from hydra.experimental.callback import Callback
from omegaconf import DictConfig

from harness.results import RECORDS, atomic_write_text, is_complete

MANIFEST = "sweep.json"
SUMMARY = "summary"
# A job that runs longer than this prints a "still running" line every this many seconds.
HEARTBEAT_S = 30.0
# Statuses of a job that ran and produced numbers; everything else is a failure row.
OK = "ok"


# --- the job list and the manifest ------------------------------------------------------

def job_key(overrides: list[str] | str) -> str:
    """A job's identity: its task overrides, order-free ("fn=sin dtype=float32" == reversed)."""
    text = overrides if isinstance(overrides, str) else " ".join(overrides)
    return " ".join(sorted(token for token in text.split(" ") if token))


def expand_jobs(config: DictConfig) -> Optional[list[list[str]]]:
    """The overrides of every job, in Hydra's order, or None for a sweeper we cannot mirror.

    Uses BasicSweeper's own expansion (preset params first, then the command line), so the
    list, its order and hence each job's number match what the launcher will run.
    """
    from hydra._internal.core_plugins.basic_sweeper import BasicSweeper
    from hydra.core.global_hydra import GlobalHydra
    from hydra.core.override_parser.overrides_parser import OverridesParser

    sweeper = config.hydra.sweeper
    if not str(sweeper.get("_target_", "")).endswith(".BasicSweeper"):
        return None
    params = [f"{k}={v}" for k, v in (sweeper.get("params") or {}).items()]
    arguments = params + list(config.hydra.overrides.task)
    loader = GlobalHydra.instance().config_loader() if GlobalHydra.instance().is_initialized() \
        else None
    parsed = OverridesParser.create(config_loader=loader).parse_overrides(arguments)
    batches = BasicSweeper.split_arguments(parsed, sweeper.get("max_batch_size"))
    return [job for batch in batches for job in batch]


def varying_keys(jobs: list[list[str]]) -> list[str]:
    """Override keys that take more than one value across the jobs (what a job line shows)."""
    values: dict[str, set[str]] = {}
    for job in jobs:
        for token in job:
            key, _, value = token.partition("=")
            values.setdefault(key, set()).add(value)
    return [key for key, seen in values.items() if len(seen) > 1]


def finished_index(sweep_dir: Path) -> dict[str, str]:
    """job_key -> run folder (relative) for every finished run under the sweep folder."""
    sweep_dir = Path(sweep_dir)
    index = {}
    for path in sorted(sweep_dir.rglob(f"{RECORDS}.parquet")):
        frame = pd.read_parquet(path, columns=None)
        if "overrides" in frame.columns and len(frame):
            index[job_key(str(frame["overrides"].iloc[0]))] = str(path.parent.relative_to(sweep_dir))
    return index


def write_manifest(sweep_dir: Path, manifest: dict) -> Path:
    return atomic_write_text(Path(sweep_dir) / MANIFEST, json.dumps(manifest, indent=1) + "\n")


def read_manifest(sweep_dir: Path) -> Optional[dict]:
    path = Path(sweep_dir) / MANIFEST
    if not path.exists():
        return None
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


# --- launchers: who runs the jobs, and how many at once ---------------------------------

def available_cpus() -> int:
    """CPUs this process may run on (a SLURM allocation or taskset narrows it)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


@dataclass(frozen=True)
class LauncherInfo:
    # The hydra/launcher choice: basic, joblib, submitit_local, slurm, ... ('single' for a run).
    name: str
    # How many jobs of this sweep may run at the same time (0: unknown).
    n_workers: int
    # True when those workers share this machine, so their timings contend for its cores.
    local: bool

    @property
    def parallel(self) -> bool:
        return self.n_workers != 1

    def columns(self) -> dict:
        return {"launcher": self.name, "n_workers": self.n_workers, "parallel": self.parallel}


SINGLE_RUN = LauncherInfo("single", 1, True)


def _joblib_workers(n_jobs: int, cpus: int) -> int:
    # joblib's convention: -1 is every CPU, -2 all but one, and so on.
    return n_jobs if n_jobs > 0 else max(1, cpus + 1 + n_jobs)


def launcher_info(hydra_cfg: DictConfig, total: Optional[int], cpus: int) -> LauncherInfo:
    """Name and concurrency of the launcher a sweep runs under, from its Hydra config."""
    name = str(hydra_cfg.runtime.choices.get("hydra/launcher", "basic"))
    launcher = hydra_cfg.launcher
    target = str(launcher.get("_target_", ""))
    if target.endswith(".BasicLauncher"):
        workers, local = 1, True
    elif target.endswith(".JoblibLauncher"):
        workers, local = _joblib_workers(int(launcher.get("n_jobs", -1)), cpus), True
    elif target.endswith("submitit_launcher.LocalLauncher"):
        # submitit's local executor starts every job of the batch at once.
        workers, local = total or 0, True
    elif target.endswith("submitit_launcher.SlurmLauncher"):
        workers, local = int(launcher.get("array_parallelism", 0)), False
    else:
        workers, local = 0, False
    if total and workers:
        workers = min(workers, total)
    return LauncherInfo(name, workers, local)


def job_threads(info: LauncherInfo, cpus: int) -> Optional[int]:
    """Threads for one job: the machine's CPUs shared among local workers (None: torch's default).

    Without this, two workers on two cores each start a two-thread pool and the sweep runs
    slower than serially; accuracy does not depend on it, timing is marked parallel anyway.
    """
    if not (info.local and info.parallel):
        return None
    return max(1, cpus // max(1, info.n_workers))


# --- one job's place in the sweep -------------------------------------------------------

@dataclass(frozen=True)
class JobContext:
    """What a job knows about its sweep: position, identity, shown config, launcher."""

    num: int
    total: Optional[int]
    overrides: list[str]
    shown: list[str]
    launcher: LauncherInfo
    # Folder (relative to the sweep) of a finished run with the same overrides, if any.
    finished_in: Optional[str]

    @property
    def tag(self) -> str:
        return f"[{self.num + 1}/{self.total if self.total else '?'}]"


def job_context(hydra_cfg: DictConfig) -> JobContext:
    """The running job's context, from its Hydra config and the sweep manifest."""
    sweep_dir = Path(str(hydra_cfg.sweep.dir))
    manifest = read_manifest(sweep_dir) or {}
    overrides = list(hydra_cfg.overrides.task)
    total = manifest.get("total")
    varying = set(manifest.get("varying", [])) or {t.partition("=")[0] for t in overrides}
    shown = [t for t in overrides if t.partition("=")[0] in varying]
    info = launcher_info(hydra_cfg, total, available_cpus())
    finished = manifest.get("finished", {}).get(job_key(overrides))
    return JobContext(int(hydra_cfg.job.num), total, overrides, shown or overrides, info, finished)


def stored_record(run_dir: Path) -> dict:
    return pd.read_parquet(Path(run_dir) / f"{RECORDS}.parquet").iloc[0].to_dict()


def resume_decision(context: JobContext, sweep_dir: Path, run_dir: Path) -> tuple[str, Optional[Path]]:
    """('run', None), ('skip', finished run folder) or ('conflict', the occupied folder).

    A job is skipped when a finished run with the same overrides exists anywhere in the
    sweep folder (so reordering the command line still resumes). Its own folder holding a
    finished run of another job means the folder was reused for a different sweep: the job
    cannot write there without destroying that run, so it reports a conflict instead.
    """
    if context.finished_in is not None and is_complete(sweep_dir / context.finished_in):
        return "skip", sweep_dir / context.finished_in
    if is_complete(run_dir):
        stored = stored_record(run_dir)
        if job_key(str(stored.get("overrides", ""))) == job_key(context.overrides):
            return "skip", run_dir
        return "conflict", run_dir
    return "run", None


@contextmanager
def heartbeat(say: Callable[[str], None], every_s: float = HEARTBEAT_S) -> Iterator[None]:
    """Print 'still running (N s)' every `every_s` seconds until the block ends."""
    stop = threading.Event()
    start = time.perf_counter()

    def beat() -> None:
        while not stop.wait(every_s):
            say(f"still running ({time.perf_counter() - start:.0f} s)")

    thread = threading.Thread(target=beat, daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()


# --- gathering finished records -----------------------------------------------------------

def gather(folder: Path) -> pd.DataFrame:
    """Every finished record under `folder`, one row each, with `job_dir` relative to it.

    Only records.parquet counts: it is written last, so a job killed halfway contributes
    nothing (never a partial row). Rows are ordered by sweep position, then folder.
    """
    folder = Path(folder)
    frames = []
    for path in sorted(folder.rglob(f"{RECORDS}.parquet")):
        frame = pd.read_parquet(path)
        frame["job_dir"] = str(path.parent.relative_to(folder)) or "."
        frames.append(frame)
    if not frames:
        return pd.DataFrame()
    records = pd.concat(frames, ignore_index=True)
    order = [c for c in ("job_num", "job_dir") if c in records.columns]
    return records.sort_values(order, kind="stable").reset_index(drop=True)


# --- labels and keys for tables ----------------------------------------------------------

def _params(row: pd.Series) -> dict:
    """A record's method parameters: the `method_params` column, else method.* overrides."""
    text = row.get("method_params")
    if isinstance(text, str) and text:
        return json.loads(text)
    found = {}
    for token in str(row.get("overrides", "")).split(" "):
        key, _, value = token.partition("=")
        if key.startswith("method."):
            found[key[len("method."):]] = value
    return found


def _value_text(value: Any) -> str:
    if value is None:
        return "auto"
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def variant_labels(records: pd.DataFrame) -> pd.Series:
    """Column label per record: the method, plus the parameters that vary within it here.

    `-m method=autograd,finite` gives 'autograd', 'finite'; a step-size sweep gives
    'finite scheme=central h=1e-05'. Parameters constant across the sweep are left out.
    """
    params = records.apply(_params, axis=1)
    labels = records["method"].astype(str).copy()
    for method in records["method"].unique():
        rows = records["method"] == method
        keys = list(dict.fromkeys(k for p in params[rows] for k in p))
        varying = [k for k in keys
                    if len({_value_text(p.get(k)) for p in params[rows]}) > 1]
        for i in records.index[rows]:
            extra = " ".join(f"{k}={_value_text(params[i].get(k))}" for k in varying)
            labels[i] = f"{method} {extra}" if extra else method
    return labels


# Row keys of every pivot; the optional ones only when they vary in the records.
ROW_KEYS = ("fn", "dtype")
OPTIONAL_ROW_KEYS = ("order", "device", "n", "host")


def row_keys(records: pd.DataFrame) -> list[str]:
    keys = list(ROW_KEYS)
    for key in OPTIONAL_ROW_KEYS:
        if key in records.columns and records[key].nunique(dropna=False) > 1:
            keys.append(key)
    return keys


def successful(records: pd.DataFrame) -> pd.DataFrame:
    """Records with status ok, labelled, one per (row keys, variant): the latest kept."""
    if records.empty or "status" not in records.columns:
        return records.iloc[0:0]
    ok = records[records["status"] == OK].copy()
    if ok.empty:
        return ok
    ok["variant"] = variant_labels(ok)
    sort = [c for c in ("timestamp",) if c in ok.columns]
    ok = ok.sort_values(sort, kind="stable") if sort else ok
    ok = ok.drop_duplicates(subset=row_keys(ok) + ["variant"], keep="last")
    return ok.sort_index()


def duplicates(records: pd.DataFrame) -> int:
    """How many ok records were superseded by a later one of the same configuration."""
    if records.empty or "status" not in records.columns:
        return 0
    return int((records["status"] == OK).sum()) - len(successful(records))


def _variant_order(ok: pd.DataFrame) -> list[str]:
    return list(dict.fromkeys(ok["variant"]))


def pivot(ok: pd.DataFrame, metrics: list[str]) -> pd.DataFrame:
    """Rows: row keys; columns: (variant, metric); cells: the record's values."""
    if ok.empty:
        return pd.DataFrame()
    keys = row_keys(ok)
    table = ok.pivot_table(index=keys, columns="variant", values=metrics, aggfunc="first",
                           dropna=False, sort=False)
    table = table.swaplevel(0, 1, axis=1)
    columns = [(v, m) for v in _variant_order(ok) for m in metrics if (v, m) in table.columns]
    return table.reindex(columns=pd.MultiIndex.from_tuples(columns, names=["variant", "metric"]))


ACCURACY_METRICS = ["max_abs_err", "median_ulp", "n_nonfinite"]


def accuracy_table(records: pd.DataFrame) -> pd.DataFrame:
    """max_abs_err, median_ulp (and n_nonfinite) per (fn, dtype, ...) x method variant."""
    return pivot(successful(records), ACCURACY_METRICS)


def timed(records: pd.DataFrame) -> pd.DataFrame:
    ok = successful(records)
    if ok.empty or "time_median_s" not in ok.columns:
        return ok.iloc[0:0]
    return ok[ok["time_median_s"].notna()]


def throughput_table(records: pd.DataFrame) -> pd.DataFrame:
    """points_per_s and cost_vs_forward per (fn, dtype, ...) x method variant."""
    rows = timed(records)
    return pivot(rows, ["points_per_s", "cost_vs_forward"]) if not rows.empty else pd.DataFrame()


def error_vs_best(records: pd.DataFrame) -> pd.DataFrame:
    """Each variant's max_abs_err divided by the smallest in its row (1 = the best).

    A variant that returned non-finite values at some points scores inf: its max |error|
    covers only the points that survived, so it cannot be the most accurate. When the
    best error is exactly 0, an exact variant scores 1 and the others inf.
    """
    table = accuracy_table(records)
    if table.empty:
        return table
    err = table.xs("max_abs_err", axis=1, level="metric")
    nonfinite = table.xs("n_nonfinite", axis=1, level="metric")
    err = err.mask(nonfinite.fillna(0) > 0, math.inf)
    best = err.min(axis=1, skipna=True)
    ratio = err.div(best.where(best > 0), axis=0)
    exact = best == 0
    ratio.loc[exact] = err.loc[exact].map(lambda e: 1.0 if e == 0 else math.inf)
    return ratio


def per_point_slowdown(records: pd.DataFrame, baseline: str = "autograd") -> pd.DataFrame:
    """Per-point methods against the vectorized baseline, same row: throughput ratio.

    `slowdown` = baseline points/s over the per-point method's points/s (how many times
    slower the loop is per point). Per-point methods are those flagged in the registry.
    """
    from harness.methods import METHODS

    rows = timed(records)
    if rows.empty:
        return pd.DataFrame()
    per_point = rows[rows["method"].map(lambda m: m in METHODS and METHODS.get(m).per_point)]
    base = rows[rows["method"] == baseline]
    keys = row_keys(rows)
    if per_point.empty or base.empty:
        return pd.DataFrame()
    merged = per_point.merge(base[keys + ["points_per_s", "cost_vs_forward"]], on=keys,
                             suffixes=("", "_base"))
    merged["slowdown"] = merged["points_per_s_base"] / merged["points_per_s"]
    columns = keys + ["variant", "points_per_s", "points_per_s_base", "cost_vs_forward",
                      "cost_vs_forward_base", "slowdown"]
    return merged[columns].rename(columns={
        "variant": "per_point_method", "points_per_s": "per_point_points_per_s",
        "points_per_s_base": f"{baseline}_points_per_s", "cost_vs_forward": "per_point_cost",
        "cost_vs_forward_base": f"{baseline}_cost"})


def frontier_points(records: pd.DataFrame) -> pd.DataFrame:
    """One point per (dtype, variant): median throughput and median normalized error.

    The median runs over the sweep's functions (and devices/orders); when grid sizes vary,
    only the largest n is used, so a scaling sweep's small grids do not drag speed down.
    """
    rows = timed(records)
    if rows.empty or "norm_rel_err" not in rows.columns:
        return pd.DataFrame()
    rows = rows[rows["n"] == rows["n"].max()]
    grouped = rows.groupby(["dtype", "variant"], sort=False)
    points = grouped.agg(points_per_s=("points_per_s", "median"),
                         norm_rel_err=("norm_rel_err", "median"),
                         n_rows=("points_per_s", "size")).reset_index()
    if "parallel" in rows.columns:
        points["parallel"] = grouped["parallel"].agg(lambda p: bool(p.fillna(False).any())).values
    return points


def scaling_rows(records: pd.DataFrame) -> pd.DataFrame:
    """Timed rows of variants measured at three or more grid sizes."""
    rows = timed(records)
    if rows.empty:
        return rows
    sizes = rows.groupby(["fn", "dtype", "variant"])["n"].transform("nunique")
    return rows[sizes >= 3]


def autograd_errors(records: pd.DataFrame, fn: str) -> dict:
    """{dtype: autograd's max |error|} for one function (the step-size plot's reference line)."""
    ok = successful(records)
    if ok.empty:
        return {}
    rows = ok[(ok["method"] == "autograd") & (ok["fn"] == fn)]
    return rows.groupby("dtype")["max_abs_err"].min().to_dict()


def worst_relative_points(records: pd.DataFrame, folder: Path, method: str = "autograd") -> pd.DataFrame:
    """For each ok run of `method`: its max relative error, and where it happens.

    Columns: fn, dtype, variant, max_rel_err, max_ulp, x_worst, df_ref_worst (the x with
    the largest |error| / |f'(x)| among checked points, from the run's points table).
    """
    ok = successful(records)
    rows = ok[ok["method"] == method] if not ok.empty else ok
    out = []
    for _, row in rows.iterrows():
        where = _worst_point(Path(folder) / str(row.get("job_dir", "")) / "points.parquet")
        out.append({"fn": row["fn"], "dtype": row["dtype"], "variant": row["variant"],
                    "max_rel_err": row.get("max_rel_err", math.nan),
                    "max_ulp": row.get("max_ulp", math.nan), **where})
    return pd.DataFrame(out)


def _worst_point(path: Path) -> dict:
    if not path.exists():
        return {"x_worst": math.nan, "df_ref_worst": math.nan}
    points = pd.read_parquet(path, columns=["x", "df_ref", "abs_err", "excluded"])
    points = points[(points["excluded"] == "") & (points["df_ref"] != 0)
                    & np.isfinite(points["abs_err"])]
    if points.empty:
        return {"x_worst": math.nan, "df_ref_worst": math.nan}
    worst = points.loc[(points["abs_err"] / points["df_ref"].abs()).idxmax()]
    return {"x_worst": float(worst["x"]), "df_ref_worst": float(worst["df_ref"])}


# --- the step-size study: measured V against the model -----------------------------------

# Truncation order p of a difference scheme: error ~ C h^p.
SCHEME_ORDER = {"central": 2, "forward": 1, "backward": 1}


def _truncation_factor(scheme: str, order: int) -> tuple[int, float]:
    """(k, c): truncation constant C = c * max|f^(k)|, from the leading Taylor term.

    First derivative: central (f(x+h)-f(x-h))/2h = f' + h^2 f'''/6, one-sided f' + h f''/2.
    Second derivative: central f'' + h^2 f''''/12, one-sided (x, x+h, x+2h) f'' + h f'''.
    """
    p = SCHEME_ORDER[scheme]
    if order == 1:
        return (3, 1 / 6) if p == 2 else (2, 1 / 2)
    return (4, 1 / 12) if p == 2 else (3, 1.0)


def stepsize_rows(records: pd.DataFrame, method: str = "finite") -> pd.DataFrame:
    """Finite-difference rows with an absolute h, in groups that sweep at least 3 h values."""
    ok = successful(records)
    if ok.empty or "h_mode" not in ok.columns:
        return ok.iloc[0:0]
    rows = ok[(ok["method"] == method) & (ok["h_mode"] == "absolute")
              & ok["scheme"].isin(list(SCHEME_ORDER))].copy()
    if rows.empty:
        return rows
    rows["order"] = rows["order"] if "order" in rows.columns else 1
    keys = _stepsize_keys(rows)
    counts = rows.groupby(keys)["h"].transform("nunique")
    return rows[counts >= 3].sort_values(keys + ["h"]).reset_index(drop=True)


def _stepsize_keys(rows: pd.DataFrame) -> list[str]:
    return [k for k in row_keys(rows) if k != "n"] + ["scheme"] + \
        (["n"] if "n" in rows.columns and rows["n"].nunique() > 1 else [])


@dataclass(frozen=True)
class StepModel:
    """E(h) = C h^p + eps F / h^order for one function, dtype and scheme on one grid."""

    p: int
    order: int
    C: float
    F: float
    eps: float

    def error(self, h: np.ndarray) -> np.ndarray:
        h = np.asarray(h, dtype=np.float64)
        return self.C * h ** self.p + self.eps * self.F / h ** self.order

    @property
    def h_opt(self) -> float:
        """argmin E: p C h^(p-1) = order eps F h^-(order+1)."""
        if not (self.C > 0 and self.F > 0):
            return math.nan
        return (self.order * self.eps * self.F / (self.p * self.C)) ** (1 / (self.p + self.order))

    @property
    def err_opt(self) -> float:
        h = self.h_opt
        return float(self.error(h)) if math.isfinite(h) else math.nan


def derivative_maxima(fn: str, fn_source: str, x: np.ndarray, orders: tuple[int, ...]) -> dict:
    """max |f^(k)(x)| over the grid for each k (k = 0 is f itself), from sympy; {} if none."""
    import sympy as sp

    from harness.functions import resolve_function
    from harness.nodes import X_SYMBOL

    if fn_source not in ("builtin", "nn", "expr"):
        return {}  # user code and networks: no symbolic form to differentiate
    name = fn[len("nn."):] if fn_source == "nn" else fn
    try:
        function = resolve_function(fn_source, name=name, expr=fn)
    except ValueError:
        return {}
    expr = function.symbolic()
    if expr is None:
        return {}
    out = {}
    for k in orders:
        d = sp.diff(expr, X_SYMBOL, k) if k else expr
        values = np.abs(_evaluate(d, x))
        finite = values[np.isfinite(values)]
        out[k] = float(finite.max()) if finite.size else math.nan
    return out


def _evaluate(expr, x: np.ndarray) -> np.ndarray:
    """A sympy expression at every x: vectorized (scipy/numpy), else point by point (mpmath).

    The fallback covers functions numpy's printer cannot vectorize (erf without scipy,
    Piecewise corner cases); the model needs only a max, so float64 is plenty.
    """
    import sympy as sp

    from harness.nodes import X_SYMBOL

    with np.errstate(all="ignore"):
        try:
            f = sp.lambdify([X_SYMBOL], expr, modules=["scipy", "numpy"])
            return np.broadcast_to(np.asarray(f(x), dtype=np.float64), x.shape)
        except (TypeError, ValueError, NameError, ImportError):
            f = sp.lambdify([X_SYMBOL], expr, modules="mpmath")
            return np.array([_real(f, v) for v in x], dtype=np.float64)


def _real(f, v: float) -> float:
    try:
        value = complex(f(v))
    except (ZeroDivisionError, ValueError, TypeError):
        return math.nan
    return value.real if value.imag == 0 else math.nan


def step_model(scheme: str, order: int, dtype: str, maxima: dict) -> Optional[StepModel]:
    k, c = _truncation_factor(scheme, order)
    if k not in maxima or 0 not in maxima:
        return None
    eps = float(torch.finfo(getattr(torch, dtype)).eps)
    return StepModel(SCHEME_ORDER[scheme], order, c * maxima[k], maxima[0], eps)


def grid_points(folder: Path, job_dir: str) -> Optional[np.ndarray]:
    """The checked, non-excluded x values of one run, from its points table."""
    path = Path(folder) / job_dir / "points.parquet"
    if not path.exists():
        return None
    points = pd.read_parquet(path, columns=["x", "excluded"])
    return points.loc[points["excluded"] == "", "x"].to_numpy(dtype=np.float64)


def stepsize_table(records: pd.DataFrame, folder: Path) -> tuple[pd.DataFrame, dict]:
    """Per (fn, dtype, ..., scheme): the measured best h and error against the model's.

    Returns the table and {group key tuple: StepModel}. The measured optimum only considers
    steps where every point gave a finite result (x + h did not round back to x).
    """
    rows = stepsize_rows(records)
    if rows.empty:
        return pd.DataFrame(), {}
    keys = _stepsize_keys(rows)
    table, models = [], {}
    for key, group in rows.groupby(keys, sort=False):
        key = key if isinstance(key, tuple) else (key,)
        first = group.iloc[0]
        model = _group_model(first, folder)
        models[key] = model
        clean = group[(group["n_nonfinite"] == 0) & group["max_abs_err"].notna()]
        best = clean.loc[clean["max_abs_err"].idxmin()] if not clean.empty else None
        table.append({
            **dict(zip(keys, key)),
            "h_best": best["h"] if best is not None else math.nan,
            "err_best": best["max_abs_err"] if best is not None else math.nan,
            "h_model": model.h_opt if model else math.nan,
            "err_model": model.err_opt if model else math.nan,
            "h_ratio": (best["h"] / model.h_opt) if best is not None and model
            and math.isfinite(model.h_opt) else math.nan,
            "p": SCHEME_ORDER[first["scheme"]],
            "C": model.C if model else math.nan,
            "F": model.F if model else math.nan,
            "n_h": int(group["h"].nunique()),
        })
    return pd.DataFrame(table), models


def _group_model(first: pd.Series, folder: Path) -> Optional[StepModel]:
    x = grid_points(folder, first["job_dir"]) if "job_dir" in first else None
    if x is None or not x.size:
        return None
    order = int(first.get("order", 1) or 1)
    k, _ = _truncation_factor(first["scheme"], order)
    maxima = derivative_maxima(str(first["fn"]), str(first.get("fn_source", "builtin")), x, (0, k))
    return step_model(first["scheme"], order, str(first["dtype"]), maxima)


# --- the Hydra callback ---------------------------------------------------------------------

def _say(line: str) -> None:
    print(f"dydx: {line}", flush=True)


class SweepCallback(Callback):
    """Writes the manifest before a multirun and the summary and report after it.

    Stateless on purpose: Hydra pickles callbacks into joblib and submitit workers.
    """

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        sweep_dir = Path(str(config.hydra.sweep.dir))
        sweep_dir.mkdir(parents=True, exist_ok=True)
        jobs = expand_jobs(config)
        total = len(jobs) if jobs is not None else None
        info = launcher_info(config.hydra, total, available_cpus())
        finished = finished_index(sweep_dir)
        manifest = {
            "command": shlex.join(["python", *sys.argv]),
            "total": total,
            "jobs": jobs,
            "varying": varying_keys(jobs) if jobs else [],
            "launcher": asdict(info) | {"parallel": info.parallel},
            "finished": finished,
            "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        }
        write_manifest(sweep_dir, manifest)
        _say(start_message(sweep_dir, total, info, jobs, finished, output_in_logs(config)))

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        from harness.report import write_sweep_report

        sweep_dir = Path(str(config.hydra.sweep.dir))
        manifest = read_manifest(sweep_dir) or {}
        try:
            outcome = write_sweep_report(sweep_dir)
        except Exception:
            _say(f"building the report failed; rebuild it with: python -m harness.report {sweep_dir}")
            raise
        for line in end_messages(sweep_dir, manifest, outcome.records, outcome.paths,
                                 echo_jobs=output_in_logs(config)):
            _say(line)


def output_in_logs(config: DictConfig) -> bool:
    """submitit runs each job in its own process whose output goes to log files."""
    return str(config.hydra.launcher.get("_target_", "")).startswith(
        "hydra_plugins.hydra_submitit_launcher")


def start_message(sweep_dir: Path, total: Optional[int], info: LauncherInfo,
                  jobs: Optional[list[list[str]]], finished: dict,
                  logs_elsewhere: bool = False) -> str:
    workers = f"{info.n_workers} at a time" if info.n_workers else "concurrency unknown"
    line = f"sweep of {total if total is not None else 'an unknown number of'} jobs into " \
           f"{sweep_dir} (launcher {info.name}, {workers})"
    if jobs and finished:
        done = sum(job_key(job) in finished for job in jobs)
        if done:
            line += f"; {done} already finished there and will be skipped"
    if info.parallel and info.local:
        line += "; timings taken in parallel are contended (marked in the report)"
    if not any(arg.startswith("hydra.sweep.dir=") for arg in sys.argv):
        line += f"\ndydx: if it is interrupted, rerun the same command with " \
                f"hydra.sweep.dir={sweep_dir} to finish it"
    if logs_elsewhere:
        line += f"\ndydx: each job's output goes to {sweep_dir}/.submitit/<job id>/*_log.out; " \
                f"the lines are repeated here when the sweep ends"
    return line


def end_messages(sweep_dir: Path, manifest: dict, records: pd.DataFrame, paths: dict,
                 echo_jobs: bool = False) -> list[str]:
    """The closing lines: what finished, what failed, where the report is."""
    lines = []
    if echo_jobs and not records.empty:
        from harness.report import summary_line  # job output went to submitit's log files

        lines += [f"[{int(r.get('job_num', -1)) + 1}] {summary_line(r.to_dict())}"
                  for _, r in records.iterrows()]
    jobs = manifest.get("jobs") or []
    if jobs:
        have = set(records["overrides"].map(job_key)) if "overrides" in records.columns else set()
        missing = [job for job in jobs if job_key(job) not in have]
        text = f"{len(jobs) - len(missing)}/{len(jobs)} jobs have a record"
        if missing:
            text += f"; {len(missing)} have none (interrupted or conflicting): rerun the same " \
                    f"command with hydra.sweep.dir={sweep_dir} to complete it"
        lines.append(text)
    if not records.empty:
        failed = records[records["status"] != OK]
        counts = failed["status"].value_counts()
        lines.append(f"{len(records)} records: {len(records) - len(failed)} ok"
                     + (", " + ", ".join(f"{n} {s}" for s, n in counts.items()) if len(failed) else ""))
    for name in ("summary.csv", "report.md", "report.html"):
        if name in paths:
            lines.append(f"{name}: {paths[name]}")
    return lines

"""Issue 11's "Done means", measured side by side in one run, as one table with ratios.

    python benchmarks/done_means.py                  # every check (about 6 minutes)
    python benchmarks/done_means.py --only wall,bare # some of them
    python benchmarks/done_means.py --dry-run        # the commands, nothing run

Run it on a quiet machine (nothing else running): it makes its own load where a check
needs one. The checks:

  busy     `python run.py` repeated quietly, then beside one busy core (a spinning
           process): each busy run's cost_vs_forward within +-20 % of the quiet median,
           or flagged (time_noisy) and said on the console; no unflagged run off by 2x.
  bare     dydx's time for fn=sin method=autograd grid.n=1000000 on 2 threads against a
           bare torch.utils.benchmark Timer of the same call in a fresh process, medians
           of 3 fresh runs each: within +-15 %.
  wall     wall of `python run.py` against `python -c "import torch"`, medians of 5,
           interleaved: <= 1.8x.
  sweep8   an 8-job sweep with timing.enabled=false against a 1-job one: the cost of each
           further job <= 0.4 s.
  methods  `python run.py -m +sweep=methods` (96 jobs): <= 75 s.

Runs write under a temporary out_root (nothing lands in results/ but the reference
cache, which a first untimed run warms). The table goes to stdout and, with the raw
numbers, to --json.
"""
from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable, Optional

ROOT = Path(__file__).resolve().parent.parent
PY = sys.executable
RUN = [PY, "run.py"]
# Every command has a time limit: nothing here may hang a machine someone lent us.
LIMIT_S = 600
BARE_N = 1_000_000
BARE = f"""
import torch
from torch.utils.benchmark import Timer
torch.set_num_threads(2)
x = torch.linspace(-10, 10, {BARE_N}, dtype=torch.float64).requires_grad_()
# dydx's autograd method: grad of f(x) with grad_outputs=ones_like(y), made per call.
stmt = "torch.autograd.grad(torch.sin(x), x, torch.ones_like(x))"
m = Timer(stmt, globals={{"torch": torch, "x": x}}, num_threads=2).blocked_autorange(min_run_time=2)
print(m.median)
"""
SWEEP8 = ["-m", "fn=sin,tanh", "method=autograd,finite", "dtype=float32,float64",
          "timing.enabled=false"]
SWEEP1 = ["-m", "fn=sin", "method=autograd", "dtype=float64", "timing.enabled=false"]


@dataclass(frozen=True)
class Row:
    check: str
    measured: str
    target: str
    ratio: Optional[float]
    ok: Optional[bool]  # None: not judged (an input to another row)
    detail: str = ""


# --- pure verdicts (tested in tests/test_benchmarks_done_means.py) ------------------------

def busy_verdict(quiet: list[float], busy: list[tuple[float, bool]]) -> tuple[bool, str]:
    """Each busy cost_vs_forward within 20 % of the quiet median, or flagged; none
    unflagged off by 2x or more. -> (ok, one line per failing run)."""
    ref = statistics.median(quiet)
    bad = []
    for i, (value, flagged) in enumerate(busy):
        off = value / ref
        if not flagged and not 0.8 <= off <= 1.2:
            bad.append(f"run {i + 1}: {value:.3g} = {off:.2f}x quiet, not flagged"
                       + (" (off by 2x or more)" if off >= 2 or off <= 0.5 else ""))
    return not bad, "; ".join(bad)


def ratio_row(check: str, measured: float, base: float, unit: str, limit: float,
              what: str, detail: str = "") -> Row:
    """A check of measured/base against an upper limit on the ratio."""
    ratio = measured / base
    return Row(check, f"{measured:.3g} {unit} vs {base:.3g} {unit}", f"ratio <= {limit:g} ({what})",
               ratio, ratio <= limit, detail)


def within_row(check: str, measured: float, base: float, unit: str, tolerance: float,
               detail: str = "") -> Row:
    ratio = measured / base
    return Row(check, f"{measured:.3g} {unit} vs {base:.3g} {unit}",
               f"ratio within 1 +- {tolerance:g}", ratio, abs(ratio - 1) <= tolerance, detail)


def table(rows: list[Row]) -> str:
    """The comparison as a markdown table."""
    lines = ["| check | measured | target | ratio | verdict |", "|---|---|---|---|---|"]
    for r in rows:
        verdict = {True: "pass", False: "FAIL", None: ""}[r.ok]
        ratio = "" if r.ratio is None else f"{r.ratio:.2f}"
        lines.append(f"| {r.check} | {r.measured} | {r.target} | {ratio} | {verdict} |")
        if r.detail:
            lines.append(f"|  | {r.detail} |  |  |  |")
    return "\n".join(lines)


# --- running things -------------------------------------------------------------------------

def wall(cmd: list[str], dry: bool) -> float:
    """Seconds `cmd` took, run from the project root; it must succeed."""
    if dry:
        print("  $", " ".join(cmd))
        return 1.0
    start = time.perf_counter()
    done = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=LIMIT_S)
    if done.returncode != 0:
        raise SystemExit(f"done_means: {' '.join(cmd)} failed:\n{done.stderr[-2000:]}")
    return time.perf_counter() - start


def run_record(args: list[str], out: Path, dry: bool) -> dict:
    """`python run.py args` into a fresh folder; its record (and what it printed)."""
    folder = out / f"run{time.monotonic_ns()}"
    cmd = RUN + args + [f"hydra.run.dir={folder}"]
    if dry:
        print("  $", " ".join(cmd))
        return {"cost_vs_forward": 1.0, "time_noisy": False, "time_median_s": 1.0,
                "printed": ""}
    done = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=LIMIT_S)
    if done.returncode != 0:
        raise SystemExit(f"done_means: {' '.join(cmd)} failed:\n{done.stderr[-2000:]}")
    import pandas as pd

    record = pd.read_parquet(folder / "records.parquet").iloc[0].to_dict()
    return {**record, "printed": done.stdout}


def spinning() -> subprocess.Popen:
    """One busy core: a process that spins until killed."""
    return subprocess.Popen([PY, "-c", "while True: pass"])


# --- the checks -----------------------------------------------------------------------------

def check_busy(out: Path, repeats: int, dry: bool) -> list[Row]:
    quiet = [run_record([], out, dry) for _ in range(repeats)]
    hog = None if dry else spinning()
    try:
        busy = [run_record([], out, dry) for _ in range(repeats)]
    finally:
        if hog is not None:
            hog.kill()
            hog.wait()
    said = all(("not trustworthy" in r["printed"]) == bool(r["time_noisy"]) for r in busy)
    ok, why = busy_verdict([r["cost_vs_forward"] for r in quiet],
                           [(r["cost_vs_forward"], bool(r["time_noisy"])) for r in busy])
    values = ", ".join(f"{r['cost_vs_forward']:.3g}{'*' if r['time_noisy'] else ''}"
                       for r in busy)
    q = statistics.median(r["cost_vs_forward"] for r in quiet)
    return [Row("busy: cost_vs_forward beside one busy core", f"{values} (* flagged)",
                f"each within 20 % of quiet {q:.3g} or flagged", None, ok and said,
                why or ("" if said else "a flagged run's console line did not say so"))]


def check_bare(out: Path, repeats: int, dry: bool) -> list[Row]:
    args = ["fn=sin", "method=autograd", f"grid.n={BARE_N}", "timing.num_threads=2"]
    ours = [run_record(args, out, dry) for _ in range(repeats)]
    bare = [1.0 if dry else float(_bare_once()) for _ in range(repeats)]
    times = [r["time_median_s"] for r in ours]
    faults = statistics.median(r.get("time_faults_per_call", float("nan")) for r in ours)
    return [within_row("bare: dydx vs torch.utils.benchmark, fresh processes",
                       statistics.median(times), statistics.median(bare), "s", 0.15,
                       f"dydx runs {_numbers(times)}; bare {_numbers(bare)}; dydx page "
                       f"faults/call {faults:.3g}")]


def _numbers(values: list[float]) -> str:
    return ", ".join(f"{v:.3g}" for v in values)


def _bare_once() -> str:
    done = subprocess.run([PY, "-c", BARE], cwd=ROOT, capture_output=True, text=True,
                          timeout=LIMIT_S, check=True)
    return done.stdout.strip().splitlines()[-1]


def check_wall(out: Path, repeats: int, dry: bool) -> list[Row]:
    torch_s, run_s = [], []
    for _ in range(repeats):  # interleaved, so drift hits both alike
        torch_s.append(wall([PY, "-c", "import torch"], dry))
        run_s.append(wall(RUN + [f"out_root={out}"], dry))
    return [ratio_row("wall: python run.py vs import torch", statistics.median(run_s),
                      statistics.median(torch_s), "s", 1.8, f"medians of {repeats}")]


def check_sweep8(out: Path, repeats: int, dry: bool) -> list[Row]:
    one = statistics.median(wall(RUN + SWEEP1 + [f"hydra.sweep.dir={out}/s1_{i}"], dry)
                            for i in range(repeats))
    eight = statistics.median(wall(RUN + SWEEP8 + [f"hydra.sweep.dir={out}/s8_{i}"], dry)
                              for i in range(repeats))
    per_job = (eight - one) / 7
    return [Row("sweep8: each further job, timing off", f"{per_job:.3g} s "
                f"(8 jobs {eight:.3g} s, 1 job {one:.3g} s)", "<= 0.4 s", per_job / 0.4,
                per_job <= 0.4)]


def check_methods(out: Path, repeats: int, dry: bool) -> list[Row]:
    seconds = wall(RUN + ["-m", "+sweep=methods", f"hydra.sweep.dir={out}/methods"], dry)
    return [Row("methods: python run.py -m +sweep=methods", f"{seconds:.3g} s", "<= 75 s",
                seconds / 75, seconds <= 75)]


CHECKS: dict[str, tuple[Callable[[Path, int, bool], list[Row]], int]] = {
    # name: (check, repeats)
    "busy": (check_busy, 5), "bare": (check_bare, 3), "wall": (check_wall, 5),
    "sweep8": (check_sweep8, 1), "methods": (check_methods, 1),
}


def parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="done_means.py", description=__doc__.split("\n")[0])
    parser.add_argument("--only", default=",".join(CHECKS),
                        help=f"comma-separated checks among {', '.join(CHECKS)}")
    parser.add_argument("--dry-run", action="store_true", help="print the commands only")
    parser.add_argument("--json", type=Path, help="also write the rows here")
    args = parser.parse_args(argv)
    unknown = [c for c in args.only.split(",") if c not in CHECKS]
    if unknown:
        parser.error(f"unknown check {unknown[0]!r}; choose among: {', '.join(CHECKS)}")
    return args


def main(argv: Optional[list[str]] = None) -> int:
    args = parse(sys.argv[1:] if argv is None else argv)
    rows: list[Row] = []
    with tempfile.TemporaryDirectory(prefix="dydx-done-means-") as tmp:
        out = Path(tmp)
        if not args.dry_run:
            wall(RUN + [f"out_root={out}", "timing.enabled=false"], False)  # warm the cache
        for name in args.only.split(","):
            check, repeats = CHECKS[name]
            print(f"done_means: {name} ...", file=sys.stderr, flush=True)
            rows += check(out, repeats, args.dry_run)
    if args.dry_run:
        print("done_means: dry run: the commands above, nothing measured")
        return 0
    print(table(rows))
    if args.json:
        args.json.write_text(json.dumps([asdict(r) for r in rows], indent=1))
    return 0 if all(r.ok is not False for r in rows) else 1


if __name__ == "__main__":
    raise SystemExit(main())

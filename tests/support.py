"""Helpers shared by the sweep and report tests."""
from __future__ import annotations

import contextlib
import io
import runpy
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def run_sweep(folder: Path, cache: Path, *args: str) -> str:
    """`python run.py -m <args>` into `folder`, in this process; returns what it printed."""
    argv = [str(ROOT / "run.py"), "-m", *args, f"hydra.sweep.dir={folder}"]
    if not any(a.startswith("reference.cache_dir=") for a in args):
        argv.append(f"reference.cache_dir={cache}")
    out = io.StringIO()
    saved = sys.argv
    sys.argv = argv
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(out):
            runpy.run_path(str(ROOT / "run.py"), run_name="__main__")
    except SystemExit as exit_:
        if exit_.code:
            raise AssertionError(f"run.py exited {exit_.code}:\n{out.getvalue()}") from None
    finally:
        sys.argv = saved
    return out.getvalue()

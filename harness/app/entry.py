"""The app edge: what `python run.py ...` prints when it cannot finish, and its exit status.

Everything below raises (DydxError with its one line, Stop carrying one across Hydra's
callback guard, Interrupted with the resume line, SystemExit with a run's status); only
this module prints such a line and turns it into an exit status (harness.errors.EXIT).
Hydra is asked to let exceptions through (HYDRA_FULL_ERROR) instead of printing its own
traceback, so its few errors that precheck cannot foresee also become one line.
"""
from __future__ import annotations

import os
import sys
import tempfile
import traceback
import warnings
from contextlib import contextmanager
from typing import Callable, Iterator

from hydra.errors import HydraException
from omegaconf.errors import OmegaConfBaseException

from harness.app.commandline import precheck
from harness.errors import EXIT, DydxError, Stop


def say(prefix: str, message: str) -> None:
    """One line on stderr (a message that has several lines is joined into one)."""
    text = " ".join(part.strip() for part in str(message).splitlines() if part.strip())
    print(f"dydx: {prefix}{text}", file=sys.stderr, flush=True)


def _show_warning(message, category, filename, lineno, file=None, line=None) -> None:
    print(f"dydx: warning: {' '.join(str(message).split())}", file=sys.stderr, flush=True)


@contextmanager
def _quiet_hydra() -> Iterator[None]:
    """Hydra re-raises instead of printing its trimmed traceback; a warning is one line."""
    saved_env = os.environ.get("HYDRA_FULL_ERROR")
    os.environ["HYDRA_FULL_ERROR"] = "1"
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("default")
            warnings.showwarning = _show_warning
            yield
    finally:
        if saved_env is None:
            os.environ.pop("HYDRA_FULL_ERROR", None)
        else:
            os.environ["HYDRA_FULL_ERROR"] = saved_env


@contextmanager
def mode_from_the_flags(args: list[str]) -> Iterator[None]:
    """Hydra composes the whole config once only to read `hydra.mode` (Hydra.get_mode),
    then again to run it: 0.2 to 0.4 s of every command on a small machine. No dydx
    config sets hydra.mode, so it is None, and -m decides, unless the command line sets
    it: then Hydra reads it as it always does."""
    if any("hydra.mode" in arg for arg in args):
        yield
        return
    from hydra._internal.hydra import Hydra

    original = Hydra.get_mode
    Hydra.get_mode = lambda self, config_name, overrides: None
    try:
        yield
    finally:
        Hydra.get_mode = original


def _bug(err: BaseException) -> int:
    """An exception dydx did not expect: one line, and the traceback kept in a file."""
    fd, path = tempfile.mkstemp(prefix="dydx-traceback-", suffix=".txt")
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        out.write("".join(traceback.format_exception(err)))
    say("error: ", f"dydx failed: {type(err).__name__}: {err} (a bug; the traceback is in "
                   f"{path})")
    return EXIT["bug"]


def main(hydra_main: Callable[[], object], args: list[str]) -> int:
    """Run `hydra_main` (run.py's @hydra.main) for the command line `args`; the exit status."""
    with _quiet_hydra(), mode_from_the_flags(args):
        try:
            precheck(args)
            hydra_main()
        except SystemExit as exit_:
            return exit_.code if isinstance(exit_.code, int) else EXIT["ok"]
        except (DydxError, Stop) as err:
            error = err.error if isinstance(err, Stop) else err
            say("error: ", str(error))
            return error.exit_status
        except (HydraException, OmegaConfBaseException) as err:
            say("error: ", str(err))
            return EXIT["usage"]
        except KeyboardInterrupt as interrupt:
            say("", str(interrupt) or "interrupted")
            return EXIT["interrupted"]
        except Exception as err:  # noqa: BLE001 - the last line of defence: never a traceback
            return _bug(err)
    return EXIT["ok"]

"""The one exception type for problems a user can fix, the exit statuses, and the
exceptions that stop a sweep or a run from the inside.

Every refusal dydx makes (a bad config, a folder it must not write, a sweep that another
process holds) is a `DydxError` whose message is one line that says what is wrong and what
is valid. Only the edges (harness.app.entry for run.py, harness.report.__main__) print it
and end with its exit status, so the same line reaches a shell user, a script reading the
exit status, and a Python caller.
"""
from __future__ import annotations

# Exit statuses of `python run.py` and `python -m harness.report` (README, "Exit statuses").
EXIT = {
    "ok": 0,            # done: a run with numbers, a sweep whose every job has a record
    "bug": 1,           # dydx itself failed: one line, the traceback saved to a file it names
    "usage": 2,         # the command cannot run as given; nothing stored was changed
    "unsupported": 3,   # a run the method cannot do (fn, dtype, device, order): recorded
    "timeout": 4,       # a run past its time limit (time_limit_s): recorded as timeout
    "failed": 5,        # a run that raised (status error or oom): recorded with its reason
    "incomplete": 6,    # finished, but something is missing, and the line says what
    "interrupted": 130,  # Ctrl-C: the line says how to resume
}


class DydxError(Exception):
    """A problem the user can fix; str(err) is one line, without the 'dydx: error:' prefix."""

    exit_status = EXIT["usage"]


class ConfigError(DydxError, ValueError):
    """A config or a command line the harness cannot run (harness.config.validate says
    which); a ValueError too, as a wrong value is."""


class FolderError(DydxError):
    """A folder dydx must not or cannot write to (another process holds it, it holds a
    finished run or a sweep, it is read-only); nothing was changed."""


class Incomplete(DydxError):
    """The work ended, but not all of it is there (jobs without a record, views not rebuilt)."""

    exit_status = EXIT["incomplete"]


class Stop(BaseException):
    """Carries a DydxError through code that swallows every Exception (Hydra's callback
    guard turns an Exception into a warning and lets the sweep run on)."""

    def __init__(self, error: DydxError) -> None:
        super().__init__(str(error))
        self.error = error


class Interrupted(KeyboardInterrupt):
    """Ctrl-C, with the one line to print (what was kept, how to resume)."""

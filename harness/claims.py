"""Claims on folders: one writer per folder, and whether a folder can be written at all.

A process that writes into a folder (a run, a sweep, a report rebuild) first claims it:
an exclusive flock on `.dydx.lock` there, which the kernel drops when the process ends
however it ends, so a killed run never leaves a stale claim and two writers can never
share a folder. The loser is refused with one line (FolderError) that names the holder.

Light on purpose (no pandas): the command line checks its folders with this before any
study library is imported.
"""
from __future__ import annotations

import os
import socket
import tempfile
import time
from pathlib import Path
from typing import Optional

from harness.atomic import temp_files
from harness.errors import FolderError

LOCK = ".dydx.lock"


def _holder(fd: int) -> str:
    """What the current holder wrote into the lock file: 'pid N on host H since T'."""
    try:
        text = os.pread(fd, 400, 0).decode("utf-8", "replace").strip()
    except OSError:
        text = ""
    return f" ({text})" if text else ""


def _lock(path: Path) -> int:
    """An open descriptor holding an exclusive flock on `path`; FolderError if held."""
    import fcntl  # POSIX only, like SIGALRM: dydx runs on Linux and macOS

    while True:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _holder(fd)
            os.close(fd)
            raise FolderError(f"{path.parent} is in use by another dydx process{holder}; "
                              f"wait for it to end, or choose another folder") from None
        # The previous holder may have unlinked the file between our open and our lock:
        # then this lock guards nothing, so take the lock again on the file now there.
        try:
            if os.stat(path).st_ino == os.fstat(fd).st_ino:
                return fd
        except FileNotFoundError:
            pass
        os.close(fd)


def check_writable(folder: Path) -> None:
    """FolderError unless `folder` is (or can become) a folder this process may write in:
    its nearest existing ancestor must be a folder that takes a new entry (tried for real,
    as permission bits say nothing about root, /proc or a read-only mount)."""
    folder = Path(folder)
    existing = next((p for p in (folder, *folder.parents) if p.exists()), None)
    if existing is None:
        return
    if not existing.is_dir():
        raise FolderError(f"cannot write results under {folder}: {existing} is a file, not a "
                          f"folder; choose another folder")
    try:
        os.rmdir(tempfile.mkdtemp(prefix=".dydx-probe-", dir=existing))
    except OSError as err:
        raise FolderError(f"cannot write results under {folder}: {existing} does not take new "
                          f"files ({err.strerror or err}); choose another folder") from None


class Claim:
    """This process's hold on a folder it writes into (a run or a sweep): an exclusive
    flock on `.dydx.lock` there. FolderError if another live process holds the folder or
    it cannot be written. Use as a context manager, or release()."""

    def __init__(self, folder: Path) -> None:
        self.folder = Path(folder)
        check_writable(self.folder)
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            self._fd: Optional[int] = _lock(self.folder / LOCK)
            os.ftruncate(self._fd, 0)
            os.pwrite(self._fd, f"pid {os.getpid()} on host {socket.gethostname()} since "
                                f"{time.strftime('%Y-%m-%d %H:%M:%S')}".encode(), 0)
        except OSError as err:
            raise FolderError(f"cannot write results in {self.folder}: "
                              f"{err.strerror or err}; choose another folder") from None

    def remove_temp_files(self, *subfolders: str) -> None:
        """The temp files a killed writer left here (and in `subfolders`): only the holder
        of the claim may remove them, as no one else can be writing them."""
        for sub in ("", *subfolders):
            for tmp in temp_files(self.folder / sub):
                tmp.unlink(missing_ok=True)

    def release(self) -> None:
        if self._fd is not None:
            (self.folder / LOCK).unlink(missing_ok=True)
            os.close(self._fd)
            self._fd = None

    def __enter__(self) -> "Claim":
        return self

    def __exit__(self, *exc) -> None:
        self.release()

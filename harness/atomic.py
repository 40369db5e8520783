"""Atomic file writes: a temp file beside the target, then os.replace.

A killed process never leaves a half-written file under the target's name. Temp files
are named `.<stem>.<random><suffix>` so they are easy to recognise and clean up.
"""
from __future__ import annotations

import os
import re
import tempfile
from pathlib import Path
from typing import Callable


def atomic_write(path: Path, write: Callable[[str], object], suffix: str = "") -> Path:
    """Call write(tmp_path) on a temp file beside `path`, then move it onto `path`."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=suffix or path.suffix,
                               dir=path.parent)
    os.close(fd)
    try:
        write(tmp)
        # mkstemp makes the file private (0600); give it the permissions any new file gets.
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return path


def atomic_write_text(path: Path, text: str) -> Path:
    return atomic_write(path, lambda tmp: Path(tmp).write_text(text, encoding="utf-8"))


def atomic_write_bytes(path: Path, data: bytes) -> Path:
    return atomic_write(path, lambda tmp: Path(tmp).write_bytes(data))


# The names atomic_write gives its temp files: "." + stem + "." + mkstemp's 8 random
# characters + suffix, e.g. ".points.k3_9zq1a.csv".
TEMP_NAME = re.compile(r"^\.[^/]+\.[a-z0-9_]{8}(\.[A-Za-z0-9]+)?$")


def temp_files(folder: Path) -> list[Path]:
    """Temp files that atomic_write left in `folder` (a killed writer leaves its own)."""
    folder = Path(folder)
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.iterdir() if p.is_file() and TEMP_NAME.match(p.name))

"""harness.atomic: a killed or failing write never leaves a half-written file."""
from __future__ import annotations

import os
import stat

import pytest

from harness.atomic import atomic_write, atomic_write_text


def test_atomic_write_replaces_the_file_and_leaves_nothing_else(tmp_path):
    target = tmp_path / "table.csv"
    target.write_text("old\n")
    atomic_write(target, lambda tmp: open(tmp, "w").write("new\n"))
    assert target.read_text() == "new\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["table.csv"]


def test_failed_write_keeps_the_previous_content_and_leaves_no_temp_file(tmp_path):
    target = tmp_path / "records.parquet"
    target.write_bytes(b"finished run")

    def half_then_crash(tmp: str) -> None:
        with open(tmp, "wb") as handle:
            handle.write(b"half a tab")
        raise OSError("disk full")

    with pytest.raises(OSError, match="^disk full$"):
        atomic_write(target, half_then_crash)
    assert target.read_bytes() == b"finished run"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["records.parquet"]


def test_failed_first_write_creates_no_file(tmp_path):
    with pytest.raises(ValueError, match="^bad$"):
        atomic_write(tmp_path / "new.csv", lambda tmp: (_ for _ in ()).throw(ValueError("bad")))
    assert list(tmp_path.iterdir()) == []


def test_atomic_write_creates_missing_parent_folders(tmp_path):
    target = tmp_path / "a" / "b" / "report.md"
    atomic_write_text(target, "# report\n")
    assert target.read_text(encoding="utf-8") == "# report\n"


def test_written_file_gets_ordinary_permissions_not_mkstemps_0600(tmp_path):
    previous = os.umask(0o022)
    try:
        atomic_write_text(tmp_path / "report.md", "x")
    finally:
        os.umask(previous)
    assert stat.S_IMODE((tmp_path / "report.md").stat().st_mode) == 0o644


def test_temp_file_lives_beside_the_target_with_its_suffix(tmp_path):
    seen = []
    atomic_write(tmp_path / "cache.npz", lambda tmp: seen.append(tmp) or open(tmp, "w").close(),
                 suffix=".npz")
    (tmp,) = seen
    assert os.path.dirname(tmp) == str(tmp_path)
    assert os.path.basename(tmp).startswith(".cache.") and tmp.endswith(".npz")

"""The README's Python section runs as written: its code block is saved as a script and
run in an empty working directory (where its results/ lands). Slow: a study and a sweep
of eight jobs, timed briefly. The atlas section's quoted findings reproduce as printed."""
from __future__ import annotations

import contextlib
import io
import re
import runpy

import pytest

from support import ROOT, run_as_printed

pytestmark = pytest.mark.slow


def python_block(section: str) -> str:
    """The first ```python block of a README section (a '## ' heading)."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    body = text.split(f"\n## {section}", 1)[1].split("\n## ", 1)[0]
    return re.search(r"```python\n(.*?)```", body, re.S).group(1)


def test_the_readme_python_section_runs_and_writes_only_where_asked(tmp_path, monkeypatch):
    script = tmp_path / "readme_api.py"
    script.write_text(python_block("From Python"), encoding="utf-8")
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        names = runpy.run_path(str(script), run_name="__main__")
    out = printed.getvalue()
    assert out.splitlines()[0].startswith("special_erfcx | autograd | float32 | cpu | n=10001: ")
    assert names["r"].record.reference == "float64-richardson"
    assert len(names["s"].summary) == 8 and (names["s"].summary["status"] == "ok").all()
    assert names["check"].ok
    # Only what the block asked for was written: the sweep's folder (and the reference
    # cache beside results/ is not touched by in-memory studies).
    assert sorted(p.name for p in work.iterdir()) == ["results"]
    assert sorted(p.name for p in (work / "results").iterdir()) == ["sweeps"]
    assert (work / "results" / "sweeps" / "notebook" / "report.html").is_file()


def test_the_readme_atlas_findings_reproduce_as_printed():
    """Each finding quoted in the atlas section: its repro, run as printed, prints the value
    and the true value its 'At x = ...' line states (the torch this suite runs on)."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    body = text.split("\n## The derivative atlas", 1)[1].split("\n## ", 1)[0]
    found = re.findall(r"At x = \S+: autograd gives (\S+), the true value is (\S+?)\. .*?"
                       r"```python\n(.*?)```", body, re.S)
    assert len(found) == 3
    printed = run_as_printed([code for _, _, code in found])
    assert printed == [[value, "true:", true] for value, true, _ in found]

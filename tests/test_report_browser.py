"""A sweep's report.html in a real browser: headless Chromium loads it from disk with every
host name unresolvable, and a probe script (added to a copy of the page, never to the
report) counts its images, the broken ones and every resource the page fetched.

Needs Chromium (`bash .ci/run` installs it from the OS packages when missing); skipped,
with the reason, where there is none or it cannot start. Slow: it reads the small sweep."""
from __future__ import annotations

import json
import re
import shutil
import subprocess

import pytest

pytestmark = pytest.mark.slow

BROWSERS = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
PROBE = """<script>
window.addEventListener("load", () => {
  const images = Array.from(document.images);
  const out = document.createElement("pre");
  out.id = "dydx-probe";
  out.textContent = JSON.stringify({
    images: images.length,
    broken: images.filter(i => !(i.complete && i.naturalWidth > 0)).map(i => i.alt),
    sections: Array.from(document.querySelectorAll("h2")).map(h => h.textContent),
    folds: document.querySelectorAll("details").length,
    fetched: performance.getEntriesByType("resource").map(r => r.name)});
  document.body.appendChild(out);
});
</script>"""


def browser() -> str:
    for name in BROWSERS:
        if shutil.which(name):
            return shutil.which(name)
    pytest.skip("no Chromium on this machine (bash .ci/run installs it: apt-get install chromium)")


def rendered(page, tmp_path) -> dict:
    """What Chromium saw after loading `page` (a copy with the probe), as a dict."""
    probe = tmp_path / "probe.html"
    probe.write_text(page.replace("</body>", PROBE + "</body>"), encoding="utf-8")
    command = [browser(), "--headless", "--no-sandbox", "--disable-gpu",
               "--host-resolver-rules=MAP * ~NOTFOUND", "--virtual-time-budget=10000",
               "--dump-dom", probe.as_uri()]
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=120)
    except subprocess.TimeoutExpired:
        pytest.fail("Chromium did not finish loading the report within 120 s")
    found = re.search(r'<pre id="dydx-probe">(.*?)</pre>', done.stdout, re.S)
    if done.returncode != 0 and not done.stdout:
        pytest.skip(f"Chromium cannot start here: {(done.stderr.strip().splitlines() or ['?'])[-1]}")
    assert found, f"the probe did not run: {done.stderr[-2000:]}"
    return json.loads(found.group(1).replace("&quot;", '"').replace("&amp;", "&"))


def test_report_html_renders_its_sections_and_images_with_nothing_fetched(small_sweep, tmp_path):
    folder, _ = small_sweep
    page = (folder / "report.html").read_text(encoding="utf-8")
    seen = rendered(page, tmp_path)
    assert seen["broken"] == []
    # Every image the page has is drawn: the frontier plot and each run's two plots.
    assert seen["images"] == len(re.findall(r"<img ", page)) == 1 + 2 * 12
    assert seen["fetched"] == []  # all inline: no external URL, no file beside the page
    assert seen["sections"][:3] == ["What the data show", "Accuracy", "Throughput"]
    assert seen["sections"][-1] == "Per configuration"
    assert seen["folds"] == 12  # one per run
    assert not re.search(r"https?://", page)

"""harness.report.blocks: one list of blocks, rendered to Markdown and to HTML."""
from __future__ import annotations

from harness.report.blocks import Bullets, Heading, Table, Text, render_html, render_markdown


def test_markdown_and_html_render_the_same_blocks():
    blocks = [Heading("Title", 1), Text("`x**2*sin(x)` and **y** < z"), Bullets(("a", "b|c")),
              Table(("k", "v"), (("x**2*x**3", "a|b"),), "note")]
    assert render_markdown(blocks) == (
        "# Title\n\n`x**2*sin(x)` and **y** < z\n\n- a\n- b|c\n\n| k | v |\n|---|---|\n"
        "| x\\*\\*2\\*x\\*\\*3 | a\\|b |\n\nnote\n")
    page = render_html(blocks, "T")
    assert "<h1>Title</h1>" in page
    assert "<p><code>x**2*sin(x)</code> and <strong>y</strong> &lt; z</p>" in page
    assert "<td>x**2*x**3</td><td>a|b</td>" in page and "<p class=note>note</p>" in page

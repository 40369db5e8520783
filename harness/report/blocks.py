"""Documents as one list of blocks, rendered to Markdown and to self-contained HTML.

The sweep report and any other page are built as blocks (Heading, Text, Bullets, Table,
Image, Fold) and rendered twice: report.md and report.html (inline CSS, images as data:
URIs, no external resources, so it opens from disk)."""
from __future__ import annotations

import base64
import html
import io
import re
from dataclasses import dataclass, field
from typing import Sequence, Union

import numpy as np
import pandas as pd

from harness.report.format import fmt

PLOT_DPI = 100


def png_bytes(fig) -> bytes:
    buffer = io.BytesIO()
    fig.savefig(buffer, dpi=PLOT_DPI, format="png")
    return buffer.getvalue()


@dataclass(frozen=True)
class Heading:
    text: str
    level: int = 2


@dataclass(frozen=True)
class Text:
    text: str


@dataclass(frozen=True)
class Bullets:
    items: tuple[str, ...]


@dataclass(frozen=True)
class Link:
    """A table cell that links a file beside the report, e.g. a run's report.md."""

    text: str
    # Relative to the report; never an external URL (the HTML must open from disk alone).
    path: str

    def __str__(self) -> str:
        return self.text


@dataclass(frozen=True)
class Table:
    header: tuple[str, ...]
    # Cells are text, or a Link.
    rows: tuple[tuple, ...]
    note: str = ""
    # Optional CSS background colour per cell (same shape as rows; "" for none): HTML only.
    colors: tuple[tuple[str, ...], ...] = ()


@dataclass(frozen=True)
class Code:
    """A block of code: fenced in markdown, <pre> in HTML."""

    text: str
    language: str = "python"


@dataclass(frozen=True)
class Image:
    # Path of the PNG relative to the report, e.g. plots/stepsize_sin.png.
    path: str
    png: bytes
    caption: str


@dataclass(frozen=True)
class Fold:
    """A collapsible group in HTML (<details>); a plain sub-section in markdown."""

    title: str
    blocks: tuple = field(default_factory=tuple)


Block = Union[Heading, Text, Bullets, Table, Image, Fold, Code]


def _md_cell(text) -> str:
    """Data in a table cell or a title: literal, even when it holds | or * (x**2*sin(x))."""
    literal = str(text).replace("|", "\\|").replace("*", "\\*").replace("\n", " ")
    return f"[{literal}]({text.path})" if isinstance(text, Link) else literal


def _html_cell(cell) -> str:
    text = html.escape(str(cell), quote=False)
    return f'<a href="{html.escape(cell.path)}">{text}</a>' if isinstance(cell, Link) else text


def render_markdown(blocks: Sequence[Block]) -> str:
    out: list[str] = []
    for block in blocks:
        if isinstance(block, Heading):
            out.append(f"{'#' * block.level} {block.text}")
        elif isinstance(block, Text):
            out.append(block.text)
        elif isinstance(block, Bullets):
            out.append("\n".join(f"- {item}" for item in block.items))
        elif isinstance(block, Table):
            lines = ["| " + " | ".join(_md_cell(h) for h in block.header) + " |",
                     "|" + "---|" * len(block.header)]
            lines += ["| " + " | ".join(_md_cell(c) for c in row) + " |" for row in block.rows]
            out.append("\n".join(lines) + (f"\n\n{block.note}" if block.note else ""))
        elif isinstance(block, Image):
            caption = _md_cell(block.caption)
            out.append(f"![{caption}]({block.path})\n\n*{caption}*")
        elif isinstance(block, Fold):
            out.append(f"#### {_md_cell(block.title)}\n\n" + render_markdown(block.blocks).strip())
        elif isinstance(block, Code):
            out.append(f"```{block.language}\n{block.text}\n```")
    return "\n\n".join(out) + "\n"


def render_text(table: Table) -> str:
    """A table for a terminal: columns padded to their widest cell, the note below."""
    rows = [table.header, *table.rows]
    widths = [max(len(str(row[i])) for row in rows) for i in range(len(table.header))]
    lines = ["  ".join(str(cell).ljust(w) for cell, w in zip(row, widths)).rstrip()
             for row in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines) + (f"\n{table.note}" if table.note else "")


def _inline_html(text: str) -> str:
    """Escape, then the two markdown marks the report's prose uses: `code` and **bold**
    (bold only outside code, so an expression such as `x**2*sin(x)` stays literal)."""
    parts = re.split(r"(`[^`]+`)", text)
    out = []
    for part in parts:
        if part.startswith("`") and part.endswith("`") and len(part) > 1:
            out.append(f"<code>{html.escape(part[1:-1], quote=False)}</code>")
        else:
            out.append(re.sub(r"\*\*([^*]+)\*\*", r"<strong>\1</strong>",
                              html.escape(part, quote=False)))
    return "".join(out)


def _html_block(block: Block) -> str:
    if isinstance(block, Heading):
        return f"<h{block.level}>{_inline_html(block.text)}</h{block.level}>"
    if isinstance(block, Text):
        return f"<p>{_inline_html(block.text)}</p>"
    if isinstance(block, Bullets):
        return "<ul>" + "".join(f"<li>{_inline_html(i)}</li>" for i in block.items) + "</ul>"
    if isinstance(block, Table):
        head = "".join(f"<th>{html.escape(h, quote=False)}</th>" for h in block.header)
        colors = block.colors or tuple(("",) * len(row) for row in block.rows)
        body = "".join("<tr>" + "".join(_html_td(c, color) for c, color in zip(row, shades))
                       + "</tr>" for row, shades in zip(block.rows, colors))
        note = f"<p class=note>{_inline_html(block.note)}</p>" if block.note else ""
        return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>{note}"
    if isinstance(block, Image):
        data = base64.b64encode(block.png).decode("ascii")
        caption = html.escape(block.caption)
        return (f'<figure><img alt="{caption}" src="data:image/png;base64,{data}">'
                f"<figcaption>{caption}</figcaption></figure>")
    if isinstance(block, Code):
        return f"<pre><code>{html.escape(block.text, quote=False)}</code></pre>"
    if isinstance(block, Fold):
        inner = "\n".join(_html_block(b) for b in block.blocks)
        return f"<details><summary>{html.escape(block.title)}</summary>\n{inner}\n</details>"
    raise TypeError(f"unknown block {block!r}")


def _html_td(cell, color: str) -> str:
    style = f' style="background:{html.escape(color)}"' if color else ""
    return f"<td{style}>{_html_cell(cell)}</td>"


STYLE = """
body { font: 15px/1.45 system-ui, sans-serif; max-width: 1200px; margin: 2em auto; padding: 0 1em; }
table { border-collapse: collapse; margin: 0.5em 0 1em; font-size: 13px; }
th, td { border: 1px solid #ccc; padding: 3px 7px; text-align: left; vertical-align: top; }
th { background: #f3f3f3; } tr:nth-child(even) td { background: #fafafa; }
code { background: #f3f3f3; padding: 0 3px; }
img { max-width: 100%; } figure { margin: 1em 0; } figcaption { color: #555; font-size: 13px; }
pre { background: #f6f6f6; padding: 6px 9px; overflow-x: auto; font-size: 12px; }
details { margin: 0.4em 0; } summary { cursor: pointer; } .note { color: #555; font-size: 13px; }
"""


def render_html(blocks: Sequence[Block], title: str) -> str:
    """A self-contained page: inline CSS, images as data: URIs, no external resources."""
    body = "\n".join(_html_block(b) for b in blocks)
    return (f"<!DOCTYPE html>\n<html lang=en><head><meta charset=utf-8>"
            f"<title>{html.escape(title)}</title><style>{STYLE}</style></head>\n"
            f"<body>\n{body}\n</body></html>\n")


def _walk(blocks: Sequence[Block]):
    for block in blocks:
        yield block
        if isinstance(block, Fold):
            yield from _walk(block.blocks)


def frame_block(frame: pd.DataFrame, note: str = "") -> Table:
    rows = tuple(tuple(fmt(v) if not isinstance(v, (bool, np.bool_)) else str(bool(v))
                       for v in row) for row in frame.itertuples(index=False))
    return Table(tuple(str(c) for c in frame.columns), rows, note)


def _flat(table: pd.DataFrame) -> pd.DataFrame:
    """A pivot as a flat CSV-friendly frame: row keys as columns, 'variant | metric' heads."""
    flat = table.copy()
    if isinstance(flat.columns, pd.MultiIndex):
        flat.columns = [" | ".join(str(p) for p in c) for c in flat.columns]
    return flat.reset_index()

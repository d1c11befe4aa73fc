"""Renders the report document as one self-contained HTML file: inline CSS, figures embedded as
base64 PNG data URIs, no scripts, no external fetches."""

from __future__ import annotations

import base64
from html import escape

from reports.document import Bullets, Callout, Document, Excerpt, Figure, Para, Table

CSS = """
:root { --ink:#1f2933; --muted:#616e7c; --line:#d9e2ec; --bg:#f5f7fa; --accent:#2f5f98; }
* { box-sizing: border-box; }
body { margin:0; background:var(--bg); color:var(--ink);
  font:15px/1.55 -apple-system, "Segoe UI", "DejaVu Sans", Helvetica, Arial, sans-serif; }
main { max-width:1240px; margin:0 auto; padding:28px 36px 60px; background:#fff; min-height:100vh;
  box-shadow:0 0 0 1px var(--line); }
h1 { font-size:26px; margin:0 0 4px; letter-spacing:-0.01em; }
.subtitle { color:var(--muted); margin:0 0 18px; }
h2 { font-size:19px; margin:34px 0 12px; padding-bottom:6px; border-bottom:2px solid var(--line); }
nav ol { display:flex; flex-wrap:wrap; gap:6px 18px; padding:10px 14px; margin:0; list-style:none;
  background:var(--bg); border-radius:6px; counter-reset:s; }
nav li { counter-increment:s; } nav li::before { content:counter(s) ". "; color:var(--muted); }
a { color:var(--accent); text-decoration:none; } a:hover { text-decoration:underline; }
.scroll { overflow-x:auto; max-width:100%; margin:8px 0 4px; -webkit-overflow-scrolling:touch; }
section { min-width:0; }
td.win { background:#e3f4e8; color:#1b5e31; font-weight:600; }
td.loss { background:#fde8e8; color:#9b1c1c; font-weight:600; }
#summary ul { font-size:16px; line-height:1.6; padding-left:22px; }
#summary li { margin:6px 0; }
@media (max-width: 1000px) { main { padding:18px 16px 40px; } h1 { font-size:22px; } }
table { border-collapse:collapse; font-size:13.5px; font-variant-numeric:tabular-nums; }
th, td { padding:6px 10px; border-bottom:1px solid var(--line); text-align:left; vertical-align:top; }
thead th { background:#eef2f7; font-weight:600; border-bottom:2px solid #bcccdc; white-space:nowrap; }
tbody tr:nth-child(even) { background:#fafbfc; }
td.num, th.num { text-align:right; white-space:nowrap; }
table.facts td:first-child { font-weight:600; color:var(--muted); white-space:nowrap; }
table.facts { font-size:14px; }
table.headline th { white-space:normal; vertical-align:bottom; }
table.headline th, table.headline td { padding:6px 7px; }
table.headline td:last-child { min-width:14em; font-size:12.5px; color:var(--muted); }
table.headline td:first-child { font-weight:600; }
table.headline td:first-child, table.headline th:first-child { position:sticky; left:0; z-index:1;
  background:#fff; box-shadow:1px 0 0 var(--line); }  /* the metric stays in view while the table scrolls */
table.headline thead th:first-child { background:#eef2f7; }
.caption { color:var(--muted); font-size:13px; margin:4px 0 14px; font-style:italic; }
.callout { border-left:4px solid #d69e2e; background:#fffaeb; padding:10px 16px; border-radius:4px; margin:10px 0; }
.callout.info { border-left-color:var(--accent); background:#f0f4fa; }
.callout h3 { margin:2px 0 6px; font-size:15px; }
.callout ul { margin:0; padding-left:20px; }
figure { margin:14px 0 22px; }
figure { max-width:100%; }
figure img { display:block; max-width:100%; height:auto; border:1px solid var(--line); border-radius:4px; }
figcaption { color:var(--muted); font-size:13px; margin-top:6px; }
.excerpt { border:1px solid var(--line); border-radius:6px; margin:12px 0; overflow:hidden; }
.excerpt h3 { margin:0; padding:8px 14px; font-size:14px; background:#eef2f7; }
.excerpt h3 span { color:var(--muted); font-weight:400; }
.excerpt dl { margin:0; padding:8px 14px; display:grid; grid-template-columns:max-content 1fr; gap:4px 14px; }
.excerpt dt { font-weight:600; white-space:nowrap; } .excerpt dt i { color:var(--muted); font-weight:400; }
.excerpt dd { margin:0; overflow-wrap:anywhere; }
"""


def _table(t: Table) -> str:
    facts = not any(t.columns)
    cells = "".join(f'<th{" class=num" if j in t.numeric else ""}>{escape(c)}</th>' for j, c in enumerate(t.columns))
    head = "" if facts else f"<thead><tr>{cells}</tr></thead>"
    def cls(i: int, j: int) -> str:
        names = " ".join(filter(None, ["num" if j in t.numeric else "", t.cell_classes.get((i, j), "")]))
        return f' class="{names}"' if names else ""

    def cell(i: int, j: int, c: object) -> str:
        text = escape(str(c))
        href = t.links.get((i, j))
        return f'<a href="{escape(href)}">{text}</a>' if href else text

    body = "".join("<tr>" + "".join(f"<td{cls(i, j)}>{cell(i, j, c)}</td>" for j, c in enumerate(row)) + "</tr>"
                   for i, row in enumerate(t.rows))
    cls = f' class="{escape(" ".join(filter(None, ["facts" if facts else "", t.css_class])))}"' \
        if facts or t.css_class else ""
    cap = f'<p class="caption">{escape(t.caption)}</p>' if t.caption else ""
    return f'<div class="scroll"><table{cls}>{head}<tbody>{body}</tbody></table></div>{cap}'


def _figure(f: Figure) -> str:
    data = base64.b64encode(f.path.read_bytes()).decode("ascii")
    return (f'<figure><img src="data:image/png;base64,{data}" alt="{escape(f.caption)}" '
            f'style="width:{escape(f.width)}"><figcaption>{escape(f.caption)}</figcaption></figure>')


def _block(block: object) -> str:
    if isinstance(block, Para):
        return f"<p>{escape(block.text)}</p>"
    if isinstance(block, Bullets):
        return "<ul>" + "".join(f"<li>{escape(i)}</li>" for i in block.items) + "</ul>"
    if isinstance(block, Callout):
        items = "".join(f"<li>{escape(i)}</li>" for i in block.items)
        return f'<div class="callout {escape(block.level)}"><h3>{escape(block.title)}</h3><ul>{items}</ul></div>'
    if isinstance(block, Table):
        return _table(block)
    if isinstance(block, Figure):
        return _figure(block)
    if isinstance(block, Excerpt):
        rows = "".join(f"<dt>{escape(who)} <i>{escape(how)}</i></dt><dd>{escape(text)}</dd>"
                       for who, how, text in block.lines)
        return (f'<div class="excerpt"><h3>{escape(block.title)} <span>({escape(block.note)})</span></h3>'
                f"<dl>{rows}</dl></div>")
    raise TypeError(f"unknown block {type(block).__name__}")


def render(doc: Document) -> str:
    nav = "".join(f'<li><a href="#{s.anchor}">{escape(s.title)}</a></li>' for s in doc.sections)
    body = "".join(f'<section id="{s.anchor}"><h2>{escape(s.title)}</h2>'
                   + "".join(_block(b) for b in s.blocks) + "</section>" for s in doc.sections)
    return (f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
            f'<meta name="viewport" content="width=device-width, initial-scale=1"><link rel="icon" href="data:,">'
            f"<title>{escape(doc.title)}</title><style>{CSS}</style></head><body><main>"
            f'<h1>{escape(doc.title)}</h1><p class="subtitle">{escape(doc.subtitle)}</p>'
            f"<nav><ol>{nav}</ol></nav>{body}</main></body></html>\n")

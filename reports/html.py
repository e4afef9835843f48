"""report.html: every figure and table of a `figures` call on one page that opens offline.

PNG and SVG images are embedded (base64), so the page can be mailed or archived alone; a
figure drawn only as PDF is linked by its relative name (browsers do not inline PDF reliably).
Below the figures: what was skipped and why, the annotator's actions per strategy (what the
hours bought), and each run's resolved config, so a reader can tell exactly what was compared.
"""

from __future__ import annotations

import base64
import html
from pathlib import Path

import pandas as pd
import yaml

from reports import verdicts

CSS = """body{font-family:sans-serif;max-width:1100px;margin:2em auto;color:#222}
figure{margin:1.5em 0;border-top:1px solid #ccc;padding-top:.5em}
img{max-width:100%}table{border-collapse:collapse;font-size:90%;margin:.5em 0}
td,th{border:1px solid #bbb;padding:2px 8px;text-align:right}
pre{background:#f4f4f4;padding:.5em;font-size:85%}.skip{color:#a33}"""
MIME = {"png": "image/png", "svg": "image/svg+xml"}


def _image(files: list[Path], out_dir: Path) -> str:
    """The first embeddable image of a figure as <img>, else links to its files."""
    for f in files:
        kind = f.suffix.lstrip(".")
        if kind in MIME and f.is_file():
            data = base64.b64encode(f.read_bytes()).decode("ascii")
            return f'<img alt="{html.escape(f.name)}" src="data:{MIME[kind]};base64,{data}">'
    return " ".join(_link(f, out_dir) for f in files if f.suffix != ".csv")


def _link(path: Path, out_dir: Path) -> str:
    rel = path.relative_to(out_dir) if path.is_relative_to(out_dir) else path
    return f'<a href="{html.escape(str(rel))}">{html.escape(path.name)}</a>'


def _section(drawn, out_dir: Path) -> str:
    setting = f" [{html.escape(drawn.setting)}]" if drawn.setting else ""
    body = (drawn.table.to_html(index=False, escape=True) if drawn.table is not None
            else _image(drawn.files, out_dir))
    files = ", ".join(_link(f, out_dir) for f in drawn.files)
    anchor = html.escape(drawn.files[0].stem if drawn.files else drawn.name)
    return (f'<figure id="{anchor}"><h2>{html.escape(drawn.title)}{setting}</h2>{body}'
            f"<figcaption>{html.escape(drawn.caption)}<br>files: {files}</figcaption></figure>")


def action_summary(actions: pd.DataFrame) -> pd.DataFrame:
    """Per strategy and action kind: actions and hours, mean over seeds (the initial set
    included), so the report shows how each strategy spent its budget."""
    if actions.empty:
        return pd.DataFrame(columns=["line", "kind", "actions", "hours"])
    per_run = actions.groupby(["line", "run", "kind"], observed=True).agg(
        actions=("seconds", "size"), seconds=("seconds", "sum")).reset_index()
    out = per_run.groupby(["line", "kind"], observed=True).agg(
        actions=("actions", "mean"), hours=("seconds", lambda s: s.mean() / 3600)).reset_index()
    return out.round({"actions": 1, "hours": 2})


def _verdicts(result) -> str:
    """The page opens with the verdicts: each strategy against the reference, paired by seed."""
    v = result.verdicts["verdict"]
    means = verdicts.strategy_intervals(result.verdicts["aubc"])
    return ("<h2>Verdicts against " + html.escape(result.reference) + "</h2>"
            "<p>AUBC: area under the accuracy-per-hour curve divided by the hours; interval: "
            "95% over seeds (Student t; bootstrap above 10 seeds). <i>unclear</i> below 3 "
            "seeds or when the interval of the paired difference contains 0.</p>"
            + v.to_html(index=False, float_format=lambda x: f"{x:.4f}")
            + means.to_html(index=False, float_format=lambda x: f"{x:.4f}"))


def render(result) -> str:
    """The whole page as a string (see write_report)."""
    runs, out_dir = result.runs, result.out
    idx = runs.index
    head = (f"<h1>Active-learning runs: {html.escape(str(runs.root))}</h1>"
            f"<p>{len(idx)} runs; strategies: {html.escape(', '.join(sorted(idx['line'].unique())))}"
            f"; seeds: {html.escape(', '.join(map(str, sorted(idx['seed'].unique()))))}</p>")
    parts = [head, '<nav><ul>' + "".join(
        f'<li><a href="#{html.escape(d.files[0].stem)}">{html.escape(d.title)}'
        f'{" [" + html.escape(d.setting) + "]" if d.setting else ""}</a></li>'
        for d in result.drawn) + "</ul></nav>"]
    if result.verdicts:
        parts.append(_verdicts(result))
    parts += [_section(d, out_dir) for d in result.drawn]
    if result.skipped:
        parts.append("<h2>Skipped</h2><ul>" + "".join(
            f'<li class="skip"><b>{html.escape(n)}</b>: {html.escape(why)}</li>'
            for n, why in result.skipped) + "</ul>")
    parts.append("<h2>Annotator actions per strategy (mean per seed)</h2>"
                 + action_summary(runs.actions(["kind", "seconds"])).to_html(index=False))
    parts.append("<h2>Run configs</h2>" + "".join(
        f"<details><summary>{html.escape(r.run)}</summary><pre>"
        f"{html.escape(yaml.safe_dump(r.config, sort_keys=False))}</pre></details>"
        for r in idx.itertuples()))
    return ("<!DOCTYPE html><html><head><meta charset='utf-8'><title>harness figures</title>"
            f"<style>{CSS}</style></head><body>{''.join(parts)}</body></html>\n")


def write_report(result, path: Path) -> Path:
    path = Path(path)
    path.write_text(render(result), encoding="utf-8")
    return path

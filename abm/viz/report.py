"""One self-contained HTML page per run: figures, metrics at chosen times, provenance, rules and config.

The page embeds its PNGs as base64 data URIs, so it can be mailed or archived alone;
the PNGs are also written beside it. All text from the run is HTML-escaped.
"""

from __future__ import annotations

import base64
import math
import os
from collections.abc import Sequence
from html import escape
from pathlib import Path

import numpy as np

from abm.viz.figures import (
    fields_figure,
    metric_units,
    save_figure,
    slices_figure,
    surface_figure,
    timeseries_figure,
)
from abm.viz.runs import check_time, open_run_file

#: PNG name -> caption (what the figure shows).
CAPTIONS = {
    "slices.png": (
        "Orthogonal mid-slices of the tissue: mineralised bone grey by mineral fraction, osteoid orange, "
        "adipose cream, vessels red, marrow dark; markers are the cells within two voxels of each slice."
    ),
    "fields.png": (
        "Diffusing fields on the middle x-y slice, each with its colour bar and units; white line: bone surface."
    ),
    "timeseries.png": (
        "Time series: BV/TV and porosities, BMD proxies, cells by type and stage, turnover, "
        "deaths by type and cause, marrow adiposity and active BMUs."
    ),
    "surface.png": "3-D surface of the matrix (bone and osteoid), coloured by matrix age in days.",
}


def write_figures(run, snap, out_dir: str | os.PathLike) -> list[Path]:
    """Write slices.png, fields.png, timeseries.png and surface.png of ``snap`` / ``run`` into ``out_dir``."""
    out_dir = Path(out_dir)
    makers = {
        "slices.png": lambda: slices_figure(snap),
        "fields.png": lambda: fields_figure(snap, run.units),
        "timeseries.png": lambda: timeseries_figure(run),
        "surface.png": lambda: surface_figure(snap),
    }
    return [save_figure(make(), out_dir / name) for name, make in makers.items()]


def metric_rows(timeseries, times: Sequence[float] | None = None) -> list[int]:
    """Row positions of the time series nearest to ``times`` (default first, middle, last), no repeats."""
    days = np.asarray(timeseries.index, float)
    if not len(days):
        return []
    if times:
        picks = [int(np.argmin(np.abs(days - t))) for t in times]
    else:
        picks = [0, (len(days) - 1) // 2, len(days) - 1]
    return sorted(set(picks))


def format_value(value: float) -> str:
    """A metric value as shown in the report table (six significant digits; ``n/a`` for NaN)."""
    value = float(value)
    return "n/a" if math.isnan(value) else f"{value:.6g}"


def write_report(
    run_path: str | os.PathLike, out_dir: str | os.PathLike, times: Sequence[float] | None = None
) -> Path:
    """Write the PNGs and ``NAME_report.html`` of the run at ``run_path`` into ``out_dir``.

    Args:
        run_path: the ``.h5`` run file.
        out_dir: destination folder (created).
        times: days at which to tabulate the metrics (nearest time-series rows); the
            snapshot figures show the snapshot nearest the last of them. Default: the
            first, middle and last rows, and the final snapshot.

    Returns:
        The path of the HTML page. Raises UserError for a missing or unreadable file or
        a time outside the run.
    """
    run_path, out_dir = Path(run_path), Path(out_dir)
    with open_run_file(run_path) as run:
        times = [check_time(run, t) for t in times or ()]
        snap = run.snapshot(times[-1] if times else None)
        pngs = write_figures(run, snap, out_dir)
        page = _page(run, run_path, snap.time_days, pngs, metric_rows(run.timeseries, times))
    path = out_dir / f"{run_path.stem}_report.html"
    path.write_text(page, encoding="utf-8")
    return path


# ---------------------------------------------------------------------- HTML
_STYLE = """
body { font-family: system-ui, sans-serif; max-width: 1200px; margin: 2em auto; padding: 0 1em; color: #222; }
h1 { font-size: 1.6em; } h2 { border-bottom: 1px solid #ccc; padding-bottom: 0.2em; margin-top: 1.8em; }
figure { margin: 1.2em 0; } img { max-width: 100%; border: 1px solid #ddd; }
figcaption { font-size: 0.92em; color: #444; margin-top: 0.3em; }
table { border-collapse: collapse; font-size: 0.92em; }
th, td { border: 1px solid #ccc; padding: 0.25em 0.6em; text-align: left; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
pre { background: #f6f6f6; border: 1px solid #ddd; padding: 0.8em; overflow-x: auto; font-size: 0.88em; }
"""


def _page(run, run_path: Path, snapshot_day: float, pngs: list[Path], rows: list[int]) -> str:
    name = str((run.scenario or {}).get("name") or run_path.stem)
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>{escape(name)}: abm run report</title>",
        f"<style>{_STYLE}</style></head><body>",
        f"<h1>{escape(name)}: abm run report</h1>",
        f"<p>Run file <code>{escape(str(run_path))}</code>; snapshot figures at t = {snapshot_day:g} d.</p>",
        "<h2>Figures</h2>",
    ]
    parts += [_figure(png) for png in pngs]
    parts += ["<h2>Metrics</h2>", _metrics_table(run, rows)]
    parts += ["<h2>Provenance</h2>", _provenance_table(run.provenance)]
    parts += ["<h2>Rules</h2>", f"<pre>{escape(run.rules or '(no rules recorded)')}</pre>"]
    parts += ["<h2>Resolved config</h2>", f"<pre>{escape(run.config or '(no config recorded)')}</pre>"]
    parts.append("</body></html>\n")
    return "\n".join(parts)


def _figure(png: Path) -> str:
    data = base64.b64encode(png.read_bytes()).decode("ascii")
    caption = CAPTIONS.get(png.name, "")
    return (
        f'<figure><img src="data:image/png;base64,{data}" alt="{escape(png.name)}">'
        f"<figcaption><code>{escape(png.name)}</code>: {escape(caption)}</figcaption></figure>"
    )


def _metrics_table(run, rows: list[int]) -> str:
    if not rows:
        return "<p>No time series recorded (an unfinished run).</p>"
    frame = run.timeseries
    days = np.asarray(frame.index, float)
    units = run.units
    head = "".join(f"<th>t = {days[i]:g} d</th>" for i in rows)
    lines = [f"<table><thead><tr><th>metric</th><th>units</th>{head}</tr></thead><tbody>"]
    for column in frame.columns:
        unit = metric_units(units, column)
        values = frame[column].to_numpy(float)
        cells = "".join(f'<td class="num">{escape(format_value(values[i]))}</td>' for i in rows)
        lines.append(f"<tr><td><code>{escape(str(column))}</code></td><td>{escape(unit)}</td>{cells}</tr>")
    lines.append("</tbody></table>")
    return "\n".join(lines)


def _provenance_table(provenance: dict | None) -> str:
    items = [(k, v) for k, v in (provenance or {}).items() if k != "config"]  # the config has its own section
    if not items:
        return "<p>No provenance recorded.</p>"
    rows = "".join(
        f"<tr><th>{escape(str(key))}</th><td><code>{escape(_text(value))}</code></td></tr>" for key, value in items
    )
    return f"<table><tbody>{rows}</tbody></table>"


def _text(value: object) -> str:
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    if isinstance(value, np.ndarray):
        return np.array2string(value, separator=", ")
    return str(value)

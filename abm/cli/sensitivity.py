"""``abm sensitivity DIR``: Sobol' or Morris indices of a batch with a sobol/morris sweep.

Per arm and metric (default: bone and BMD metrics, those defined), the replicate mean
at the end point (or ``--at``) is analysed with SALib: Sobol' first-order (S1) and
total (ST) indices, or Morris mu, mu* and sigma, each with its 95 % confidence
interval half-width (``*_conf``, bootstrap). Writes ``sensitivity.csv`` and
``sensitivity.png`` (bar chart) into ``--out`` (default ``DIR/sensitivity``) and
prints the table.
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path

from abm.batch.figures import sensitivity_figure
from abm.batch.stats import choose_metrics, sensitivity
from abm.errors import UserError
from abm.io.batch import open_batch, read_meta
from abm.viz.figures import save_figure


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("sensitivity", help="Sobol'/Morris indices of a sobol or morris batch (table and chart)")
    parser.add_argument("batch", metavar="DIR", help="batch folder written by abm batch")
    parser.add_argument("--metrics", nargs="+", metavar="METRIC", help="metrics (default: bone and BMD)")
    parser.add_argument("--at", type=float, metavar="DAYS", help="time analysed (default: the end)")
    parser.add_argument("--out", metavar="DIR", help="output folder (default: DIR/sensitivity)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    folder = Path(args.batch)
    meta = read_meta(folder)
    table = open_batch(folder)
    out = Path(args.out) if args.out else folder / "sensitivity"
    if out.exists() and not out.is_dir():
        raise UserError(f"--out: {out} exists and is not a folder")
    metrics = choose_metrics(table, args.metrics)
    indices, when, notes = sensitivity(table, meta, metrics, args.at, seed=int(meta.get("seed", 0)))
    method = meta["sweep"]["method"]
    out.mkdir(parents=True, exist_ok=True)
    csv = out / "sensitivity.csv"
    indices.to_csv(csv, index=False)
    png = save_figure(sensitivity_figure(indices, method, table.attrs.get("units", {}), meta.get("name", "")),
                      out / "sensitivity.png")
    for note in notes:
        print(f"note: {note}")
    print(format_indices(indices, method, when))
    print(csv)
    print(png)
    return 0


def format_indices(indices, method: str, when: float) -> str:
    """The indices as aligned text."""
    if method == "sobol":
        cols = (("S1", "S1_conf"), ("ST", "ST_conf"))
        lines = [f"Sobol' indices at day {when:g} (± 95 % CI half-width)"]
    else:
        cols = (("mu_star", "mu_star_conf"), ("mu", None), ("sigma", None))
        lines = [f"Morris screening at day {when:g} (± 95 % CI half-width)"]
    head = f"{'arm':<14} {'metric':<20} {'parameter':<46}" + "".join(f"{c:>22}" for c, _ in cols)
    lines.append(head)
    for _, r in indices.iterrows():
        cells = "".join(f"{_v(r[c], r[e] if e else None):>22}" for c, e in cols)
        lines.append(f"{str(r['arm']):<14} {r['metric']:<20} {r['parameter']:<46}{cells}")
    return "\n".join(lines)


def _v(value: float, conf: float | None) -> str:
    text = "nan" if not math.isfinite(value) else f"{value:.3g}"
    if conf is not None:
        text += " ± " + ("nan" if not math.isfinite(conf) else f"{conf:.2g}")
    return text

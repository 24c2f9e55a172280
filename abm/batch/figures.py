"""Figures of a batch: arm time courses with confidence bands, sensitivity bar charts.

Like :mod:`abm.viz.figures`, every function builds its own Figure (never pyplot);
write it with :func:`abm.viz.figures.save_figure`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch
from matplotlib.ticker import ScalarFormatter

from abm.viz.figures import metric_units

#: Readable names of the usual metrics (others: underscores as spaces).
METRIC_NAMES = {
    "bv_tv": "BV/TV", "porosity": "porosity", "cortical_porosity": "cortical porosity",
    "vbmd_mg_cm3": "vBMD", "abmd_g_cm2": "aBMD", "tmd_mg_cm3": "TMD", "marrow_adiposity": "marrow adiposity",
    "tb_th_um": "Tb.Th", "tb_sp_um": "Tb.Sp", "tb_n_per_mm": "Tb.N", "conn_d_per_mm3": "Conn.D",
    "resorbed_um3_per_day": "volume resorbed per day", "formed_um3_per_day": "volume formed per day",
    "active_bmus": "active BMUs", "bmu_activations": "BMU activations",
    "n_osteoclast": "resorbing osteoclasts", "n_osteoclast_precursor": "osteoclast precursors",
    "n_osteoblast": "osteoblasts", "n_preosteoblast": "pre-osteoblasts", "n_active_osteoblast": "active osteoblasts",
    "n_lining": "lining cells", "n_bmsc": "BMSCs", "n_adipocyte": "adipocytes",
}
REFERENCE_COLOUR = "0.15"
COLOURS = ("tab:red", "tab:blue", "tab:green", "tab:orange", "tab:purple", "tab:brown", "tab:pink", "tab:olive",
           "tab:cyan", "tab:gray")
_SMALL = 8.5


def metric_name(metric: str) -> str:
    """Readable name of a metric (``bv_tv`` -> ``BV/TV``)."""
    return METRIC_NAMES.get(metric, metric.replace("_", " "))


def metric_label(metric: str, units: Mapping[str, str] | None) -> str:
    """Axis label: readable name and units (none for dimensionless metrics)."""
    unit = metric_units(units, metric)
    return f"{metric_name(metric)} ({unit})" if unit else metric_name(metric)


def group_colours(groups: Sequence[str]) -> dict[str, str]:
    """The reference (first group) dark grey, the others in tab colours."""
    return {g: REFERENCE_COLOUR if i == 0 else COLOURS[(i - 1) % len(COLOURS)] for i, g in enumerate(groups)}


def _draw(ax, courses: pd.DataFrame, metric: str, groups: Sequence[str], colours: Mapping[str, str]) -> None:
    for group in groups:
        part = courses[(courses["metric"] == metric) & (courses["group"] == group)]
        if part.empty:
            continue
        t = part["time_days"].to_numpy(float)
        mean = part["mean"].to_numpy(float)
        colour = colours[group]
        ax.plot(t, mean, color=colour, lw=1.8, marker="o" if len(t) <= 25 else None, ms=3)
        lo, hi = part["ci_low"].to_numpy(float), part["ci_high"].to_numpy(float)
        if np.isfinite(lo).any():
            ax.fill_between(t, lo, hi, color=colour, alpha=0.2, lw=0)
    ax.grid(alpha=0.3)
    ax.tick_params(labelsize=_SMALL + 0.5)
    fmt = ax.yaxis.get_major_formatter()
    if isinstance(fmt, ScalarFormatter):
        fmt.set_useOffset(False)
        fmt.set_useMathText(True)
    ax.set_xlabel("time (days)")


def _n_text(courses: pd.DataFrame, group: str) -> str:
    n = courses.loc[courses["group"] == group, "n"]
    lo, hi = (int(n.min()), int(n.max())) if len(n) else (0, 0)
    return f"n={lo}" if lo == hi else f"n={lo}-{hi}"


def compare_metric_figure(courses: pd.DataFrame, effects: pd.DataFrame, metric: str, groups: Sequence[str],
                          units: Mapping[str, str] | None, title: str = "", table: pd.DataFrame | None = None) -> Figure:
    """One metric over time per group: mean and 95 % CI band; the legend gives each group's end-point effect.

    With ``table`` (the tidy table with its ``group`` column), each replicate is drawn as a thin line.
    """
    fig = Figure(figsize=(8.5, 5.0), layout="constrained")
    ax = fig.add_subplot()
    colours = group_colours(groups)
    if table is not None:
        for (group, _), part in table.groupby(["group", "run_id"], sort=False):
            if group in colours:
                ax.plot(part["time_days"].to_numpy(float), part[metric].to_numpy(float), color=colours[group],
                        lw=0.6, alpha=0.45)
    _draw(ax, courses, metric, groups, colours)
    ax.set_ylabel(metric_label(metric, units))
    handles = []
    for i, group in enumerate(groups):
        text = f"{group} ({_n_text(courses, group)})" + (", reference" if i == 0 else "")
        row = effects[(effects["metric"] == metric) & (effects["group"] == group)]
        if not row.empty:
            r = row.iloc[0]
            text += f": {_signed(r['percent_change'])} %"
            if math.isfinite(r["percent_ci_low"]):
                text += f" [{_signed(r['percent_ci_low'])}, {_signed(r['percent_ci_high'])}]"
            if math.isfinite(r["p_value"]):
                text += f", p={_p(r['p_value'])}"
        handles.append(Line2D([], [], color=colours[group], lw=1.8, label=text))
    handles.append(Patch(facecolor="0.5", alpha=0.3, label="95 % CI of the mean"))
    if table is not None:
        handles.append(Line2D([], [], color="0.4", lw=0.6, label="single replicates"))
    ax.legend(handles=handles, loc="best", fontsize=_SMALL, framealpha=0.9)
    at = effects.loc[effects["metric"] == metric, "at_days"]
    note = f"; effects at day {at.iloc[0]:g} vs reference (95 % CI, Welch)" if len(at) else ""
    ax.set_title(f"{title + ': ' if title else ''}{metric_name(metric)}, mean over replicates{note}", fontsize=10)
    return fig


def compare_figure(courses: pd.DataFrame, metrics: Sequence[str], groups: Sequence[str],
                   units: Mapping[str, str] | None, title: str = "") -> Figure:
    """Every metric in its own panel, groups as coloured means with 95 % CI bands, one legend."""
    ncols = min(3, len(metrics))
    nrows = math.ceil(len(metrics) / ncols)
    fig = Figure(figsize=(4.6 * ncols + 0.4, 3.5 * nrows + 0.9), layout="constrained")
    colours = group_colours(groups)
    for i, metric in enumerate(metrics):
        ax = fig.add_subplot(nrows, ncols, i + 1)
        _draw(ax, courses, metric, groups, colours)
        ax.set_ylabel(metric_label(metric, units), fontsize=_SMALL + 1)
        ax.set_title(metric_name(metric), fontsize=10)
    handles = [Line2D([], [], color=colours[g], lw=2, label=f"{g} ({_n_text(courses, g)})") for g in groups]
    handles.append(Patch(facecolor="0.5", alpha=0.3, label="95 % CI of the mean"))
    fig.legend(handles=handles, loc="outside lower center", ncol=min(len(handles), 4), fontsize=_SMALL + 1,
               frameon=False)
    fig.suptitle(f"{title + ': ' if title else ''}mean over replicates with 95 % confidence band", fontsize=12)
    return fig


def sensitivity_figure(indices: pd.DataFrame, method: str, units: Mapping[str, str] | None, title: str = "") -> Figure:
    """Horizontal bars per parameter: Sobol' S1 and ST, or Morris mu* and sigma, with 95 % CIs; metrics x arms."""
    metrics = list(dict.fromkeys(indices["metric"]))
    arms = list(dict.fromkeys(indices["arm"]))
    params = list(dict.fromkeys(indices["parameter"]))
    height = 0.55 * len(params) + 1.3
    fig = Figure(figsize=(5.2 * len(arms) + 2.2, height * len(metrics) + 0.8), layout="constrained")
    first = None
    for r, metric in enumerate(metrics):
        for c, arm in enumerate(arms):
            ax = fig.add_subplot(len(metrics), len(arms), r * len(arms) + c + 1, sharey=first)
            first = first or ax
            part = indices[(indices["metric"] == metric) & (indices["arm"] == arm)].set_index("parameter")
            y = np.arange(len(params))
            if method == "sobol":
                bars = (("S1", "S1_conf", "first order S1", "tab:blue"), ("ST", "ST_conf", "total ST", "tab:orange"))
                xlabel = "Sobol' index"
            else:
                bars = (("mu_star", "mu_star_conf", "μ* (mean |effect|)", "tab:blue"),
                        ("sigma", None, "σ (interaction, non-linearity)", "tab:orange"))
                unit = metric_units(units, metric)
                xlabel = f"elementary effect ({unit})" if unit else "elementary effect"
            for k, (col, conf, label, colour) in enumerate(bars):
                values = part.reindex(params)[col].to_numpy(float)
                err = part.reindex(params)[conf].to_numpy(float) if conf else None
                ax.barh(y + (k - 0.5) * 0.38, values, height=0.36, xerr=err, color=colour, label=label,
                        error_kw={"elinewidth": 1, "capsize": 3, "ecolor": "0.2"})
            ax.axvline(0, color="0.3", lw=0.8)
            ax.set_yticks(y, [_wrap(p) for p in params] if c == 0 else [""] * len(params), fontsize=_SMALL)
            if first is ax:
                ax.invert_yaxis()  # first parameter on top (shared by every panel)
            ax.grid(axis="x", alpha=0.3)
            ax.set_xlabel(xlabel, fontsize=_SMALL + 0.5)
            ax.set_title(f"{metric_name(metric)}" + (f", arm {arm}" if len(arms) > 1 else ""), fontsize=10)
            if r == 0 and c == 0:
                ax.legend(fontsize=_SMALL, loc="best")
    at = indices["at_days"].iloc[0]
    what = "Sobol' indices" if method == "sobol" else "Morris screening"
    fig.suptitle(f"{title + ': ' if title else ''}{what} at day {at:g} (bars: 95 % CI)", fontsize=12)
    return fig


def _wrap(key: str, width: int = 28) -> str:
    if len(key) <= width or "." not in key:
        return key
    head, tail = key.rsplit(".", 1)
    return f"{head}.\n{tail}"


def _signed(value: float) -> str:
    return "n/a" if not math.isfinite(value) else f"{value:+.2f}" if abs(value) < 10 else f"{value:+.1f}"


def _p(value: float) -> str:
    return f"{value:.2g}" if value >= 1e-4 else "<1e-4"

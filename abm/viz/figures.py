"""Figures of one run: tissue slices, fields, time series, a 3-D bone surface, a time-lapse GIF.

Every function builds its own :class:`~matplotlib.figure.Figure` (never pyplot), so
nothing leaks between calls; save one with :func:`save_figure`. Inputs are a run
(``abm.io.open_run``) or one of its snapshots; arrays are indexed (z, y, x), and a
slice is drawn with its first in-plane axis horizontal and the other pointing up.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import numpy as np
from matplotlib.animation import PillowWriter
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.cm import ScalarMappable
from matplotlib.colors import LightSource, LinearSegmentedColormap, Normalize, to_rgb
from matplotlib.figure import Figure
from matplotlib.font_manager import FontProperties
from matplotlib.lines import Line2D
from matplotlib.patches import Patch
from matplotlib.ticker import MaxNLocator, ScalarFormatter
from mpl_toolkits.axes_grid1.anchored_artists import AnchoredSizeBar
from mpl_toolkits.mplot3d.art3d import Poly3DCollection

from abm.geometry.state import Tissue
from abm.model import UNITS as DEFAULT_UNITS  # metric units, for files that do not store them

#: Axis name -> array axis of a (z, y, x) volume.
AXES = {"z": 0, "y": 1, "x": 2}
#: In-plane axes (horizontal, vertical) of a slice normal to each array axis.
_PLANE = {0: ("x", "y"), 1: ("x", "z"), 2: ("y", "z")}

MARROW_COLOUR = "#161616"
#: Mineralised bone is grey, from ``BONE_GREY[0]`` (mineral 0) to ``BONE_GREY[1]`` (fully mineralised).
BONE_GREY = (0.35, 1.0)
BONE_CMAP = LinearSegmentedColormap.from_list("bone_mineral", [(BONE_GREY[0],) * 3, (BONE_GREY[1],) * 3])
TISSUE_COLOURS = {Tissue.OSTEOID: "#e8873a", Tissue.VESSEL: "#d8343a", Tissue.ADIPOSE: "#f2e2a0"}
class CellStyle(NamedTuple):
    """How a cell kind is drawn; its colour also marks it in the time series."""

    colour: str
    marker: str
    label: str
    size: float  # marker area on slices, points^2


#: Cell kind -> style, in drawing order: the many small BMSCs beneath the few bone cells.
AGENT_STYLE = {
    "bmsc": CellStyle("#6fe03a", "s", "BMSCs", 14),
    "adipocyte": CellStyle("#ffc400", "D", "adipocytes", 30),
    "osteoblast": CellStyle("#19c6ff", "^", "osteoblasts", 42),
    "osteoclast": CellStyle("#ff3dff", "o", "osteoclasts", 50),
}


def cell_style(kind: str) -> CellStyle:
    """The style of a cell kind (white crosses for kinds this module does not know)."""
    return AGENT_STYLE.get(kind, CellStyle("white", "x", kind.replace("_", " "), 30))
#: Readable names of the usual fields (others are shown as stored, underscores as spaces).
FIELD_NAMES = {"rankl": "RANKL", "opg": "OPG", "tgf_beta": "TGF-β", "wnt": "Wnt", "ros": "ROS"}
DPI = 100
_SMALL = 8.5


# ---------------------------------------------------------------------- helpers
def save_figure(fig: Figure, path: str | os.PathLike, dpi: int = DPI) -> Path:
    """Write ``fig`` (PNG by the suffix) at ``dpi``: the image is ``figsize * dpi`` pixels."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    FigureCanvasAgg(fig)
    fig.savefig(path, dpi=dpi)
    return path


def pretty_units(units: str) -> str:
    """``um^3/d`` -> ``µm³/d``: micro sign and superscript powers for labels."""
    text = re.sub(r"\bum", "µm", units)
    for plain, sup in (("^-1", "⁻¹"), ("^2", "²"), ("^3", "³")):
        text = text.replace(plain, sup)
    return text


def field_name(name: str) -> str:
    """Readable name of a field (``tgf_beta`` -> ``TGF-β``)."""
    return FIELD_NAMES.get(name, name.replace("_", " "))


def field_label(name: str, units: str | None) -> str:
    """Colour-bar label of a field: readable name and units."""
    return f"{field_name(name)} ({pretty_units(units)})" if units else f"{field_name(name)} (units not recorded)"


def _slice(volume: np.ndarray, axis: int, index: int) -> np.ndarray:
    """2-D slice normal to ``axis``: rows run along the vertical in-plane axis, columns the horizontal."""
    return np.take(volume, index, axis=axis)


def _check_index(shape: Sequence[int], axis: int, index: int | None) -> int:
    """The slice index (middle when None), checked against the volume."""
    n = shape[axis]
    if index is None:
        return n // 2
    if not 0 <= index < n:
        raise ValueError(f"{'zyx'[axis]} index {index} is outside the volume (allowed 0 to {n - 1})")
    return int(index)


def _tissue_rgb(label: np.ndarray, mineral: np.ndarray) -> np.ndarray:
    """RGB image of a label slice: bone grey by mineral, other tissues in their colours, marrow dark."""
    rgb = np.empty(label.shape + (3,), np.float32)
    rgb[:] = to_rgb(MARROW_COLOUR)
    bone = label == Tissue.BONE
    grey = BONE_GREY[0] + (BONE_GREY[1] - BONE_GREY[0]) * np.clip(mineral[bone], 0.0, 1.0)
    rgb[bone] = grey[:, None]
    for tissue, colour in TISSUE_COLOURS.items():
        rgb[label == tissue] = to_rgb(colour)
    return rgb


def _tissue_handles() -> list:
    return [
        Patch(facecolor="0.8", edgecolor="0.3", label="bone (grey: mineral)"),
        Patch(facecolor=TISSUE_COLOURS[Tissue.OSTEOID], edgecolor="0.3", label="osteoid"),
        Patch(facecolor=TISSUE_COLOURS[Tissue.ADIPOSE], edgecolor="0.3", label="adipose"),
        Patch(facecolor=TISSUE_COLOURS[Tissue.VESSEL], edgecolor="0.3", label="vessel"),
        Patch(facecolor=MARROW_COLOUR, edgecolor="0.3", label="marrow"),
    ]


def _agent_handle(kind: str, label: str) -> Line2D:
    style = cell_style(kind)
    return Line2D([], [], ls="", marker=style.marker, ms=7, mfc=style.colour, mec="black", mew=0.6, label=label)


def _nice_length(span: float) -> float:
    """A 1, 2 or 5 x 10^k length close to a quarter of ``span``."""
    target = span / 4.0
    power = 10.0 ** math.floor(math.log10(target))
    return max(step * power for step in (1.0, 2.0, 5.0) if step * power <= target)


def _scale_bar(ax, width_voxels: int, voxel_um: float) -> None:
    """A white scale bar in micrometres on a dark box (readable over bone or marrow), lower right."""
    length_um = _nice_length(width_voxels * voxel_um)
    label = f"{length_um / 1000:g} mm" if length_um >= 1000 else f"{length_um:g} µm"
    bar = AnchoredSizeBar(
        ax.transData,
        length_um / voxel_um,
        label,
        loc="lower right",
        pad=0.3,
        borderpad=0.4,
        sep=3,
        color="white",
        frameon=True,
        size_vertical=max(0.4, width_voxels / 120),
        fontproperties=FontProperties(size=_SMALL + 0.5, weight="bold"),
    )
    bar.patch.set(facecolor="black", alpha=0.75, edgecolor="none")
    ax.add_artist(bar)


def _draw_slice(ax, snap, axis: int, index: int, slab_voxels: int) -> dict[str, int]:
    """Tissue slice with the cells within ``slab_voxels`` of it; returns cells drawn per kind."""
    label = _slice(snap.label, axis, index)
    ax.imshow(_tissue_rgb(label, _slice(snap.mineral, axis, index)), origin="lower", interpolation="nearest")
    horizontal, vertical = _PLANE[axis]
    normal = "zyx"[axis]
    shown = {kind: 0 for kind in snap.agents}
    order = list(AGENT_STYLE)
    for kind in sorted(snap.agents, key=lambda k: order.index(k) if k in order else len(order)):
        frame = snap.agents[kind]
        if frame is None or len(frame) == 0:
            continue
        near = np.abs(frame[normal].to_numpy(float) - index) <= slab_voxels
        shown[kind] = int(near.sum())
        style = cell_style(kind)
        ax.scatter(
            frame[horizontal].to_numpy(float)[near],
            frame[vertical].to_numpy(float)[near],
            s=style.size,
            c=style.colour,
            marker=style.marker,
            edgecolors="black",
            linewidths=0.5,
            zorder=3,
        )
    ax.set_xlim(-0.5, label.shape[1] - 0.5)
    ax.set_ylim(-0.5, label.shape[0] - 0.5)
    ax.set_xlabel(f"{horizontal} (voxel)")
    ax.set_ylabel(f"{vertical} (voxel)")
    _scale_bar(ax, label.shape[1], snap.voxel_um)
    return shown


def _no_data(ax, text: str) -> None:
    """A grey note in the middle of an empty panel (2-D or 3-D)."""
    write = getattr(ax, "text2D", ax.text)  # a 3-D axes' text() wants (x, y, z)
    write(0.5, 0.5, text, transform=ax.transAxes, ha="center", va="center", fontsize=11, color="0.4")


# ---------------------------------------------------------------------- slices
def slices_figure(snap, indices: Sequence[int | None] | None = None, slab_voxels: int = 2) -> Figure:
    """Three orthogonal slices of the tissue with the cells near each slice.

    Args:
        snap: a run snapshot (``label``, ``mineral``, ``agents``, ``voxel_um``, ``time_days``).
        indices: slice index along (z, y, x); None, or a None entry, means the middle.
        slab_voxels: cells whose voxel is within this many voxels of a slice are drawn on it.

    Returns:
        A 13.5 x 5.2 inch figure: x-y, x-z and y-z planes, bone grey by mineral fraction,
        osteoid, adipose and vessels coloured, marrow dark, one marker per cell kind,
        a micrometre scale bar on each panel and a mineral colour bar.
    """
    indices = tuple(indices) if indices is not None else (None, None, None)
    if len(indices) != 3:
        raise ValueError(f"indices: give three (z, y, x) slice indices (got {len(indices)})")
    fig = Figure(figsize=(13.5, 5.2), layout="constrained")
    axes = fig.subplots(1, 3)
    totals = {kind: 0 for kind in snap.agents}
    for axis, ax in enumerate(axes):
        index = _check_index(snap.shape, axis, indices[axis])
        for kind, n in _draw_slice(ax, snap, axis, index, slab_voxels).items():
            totals[kind] = totals.get(kind, 0) + n
        horizontal, vertical = _PLANE[axis]
        depth_um = (index + 0.5) * snap.voxel_um
        ax.set_title(f"{horizontal}-{vertical} plane, {'zyx'[axis]} = {index} ({depth_um:g} µm)")
    fig.colorbar(
        ScalarMappable(Normalize(0.0, 1.0), BONE_CMAP), ax=axes, shrink=0.75, pad=0.01, label="bone mineral fraction"
    )
    cells = [_agent_handle(kind, f"{cell_style(kind).label} ({n})") for kind, n in totals.items()]
    fig.legend(
        handles=_tissue_handles() + cells,
        loc="outside lower center",
        ncol=len(cells) + 5,
        fontsize=_SMALL + 0.5,
        frameon=False,
        handletextpad=0.4,
        columnspacing=1.4,
    )
    fig.suptitle(
        f"Tissue and cells at t = {snap.time_days:g} d  ·  voxel {snap.voxel_um:g} µm  ·  "
        f"cells within ±{slab_voxels} voxels of each slice (count in legend)",
        fontsize=11,
    )
    return fig


# ---------------------------------------------------------------------- fields
def fields_figure(snap, units: Mapping[str, str], z: int | None = None) -> Figure:
    """One panel per field on an x-y slice, with the bone outline and a colour bar in the field's units.

    Args:
        snap: a run snapshot (``fields``, ``label``, ``voxel_um``, ``time_days``).
        units: units by field name (``run.units``).
        z: slice index; None means the middle.
    """
    names = sorted(snap.fields)
    ncols = max(1, min(3, len(names)))
    nrows = max(1, math.ceil(len(names) / ncols))
    fig = Figure(figsize=(4.8 * ncols, 4.3 * nrows + 0.5), layout="constrained")
    axes = np.atleast_1d(fig.subplots(nrows, ncols)).ravel()
    z = _check_index(snap.shape, 0, z)
    bone = _slice(snap.label, 0, z)
    bone = (bone == Tissue.BONE) | (bone == Tissue.OSTEOID)
    for ax, name in zip(axes, names):
        values = _slice(np.asarray(snap.fields[name]), 0, z)
        image = ax.imshow(values, origin="lower", interpolation="nearest", cmap="viridis")
        if np.ptp(values) == 0:  # a flat colour map says nothing: state the value
            uniform = f"uniform: {values.flat[0]:.4g} {pretty_units(units.get(name) or '')}".rstrip()
            box = {"facecolor": "black", "alpha": 0.6}
            ax.text(0.5, 0.5, uniform, transform=ax.transAxes, ha="center", va="center", color="white", bbox=box)
        if bone.any() and not bone.all():
            ax.contour(bone.astype(float), levels=[0.5], colors="white", linewidths=0.7)
        ax.set_title(field_name(name))
        ax.set_xlabel("x (voxel)")
        ax.set_ylabel("y (voxel)")
        _scale_bar(ax, values.shape[1], snap.voxel_um)
        bar = fig.colorbar(image, ax=ax, shrink=0.85, label=field_label(name, units.get(name)))
        if isinstance(bar.formatter, ScalarFormatter):
            bar.formatter.set_useMathText(True)
    for ax in axes[len(names):]:
        ax.set_axis_off()
    if not names:
        _no_data(axes[0], "no fields stored")
    fig.suptitle(
        f"Fields at t = {snap.time_days:g} d, x-y plane z = {z} ({(z + 0.5) * snap.voxel_um:g} µm)  ·  "
        "white line: bone surface",
        fontsize=11,
    )
    return fig


# ---------------------------------------------------------------------- time series
#: Cell-count columns: (column, label, kind for the colour, line style for the stage).
_CELL_SERIES = (
    ("n_osteoclast", "resorbing osteoclasts", "osteoclast", "-"),
    ("n_osteoclast_precursor", "osteoclast precursors", "osteoclast", "--"),
    ("n_osteoblast", "osteoblasts (all)", "osteoblast", "-"),
    ("n_preosteoblast", "pre-osteoblasts", "osteoblast", "--"),
    ("n_active_osteoblast", "active osteoblasts", "osteoblast", "-."),
    ("n_lining", "lining cells", "osteoblast", ":"),
    ("n_bmsc", "BMSCs", "bmsc", "-"),
    ("n_adipocyte", "adipocytes", "adipocyte", "-"),
)
_DEATH_STYLES = ("-", "--", "-.", ":")


def metric_units(units: Mapping[str, str] | None, name: str) -> str:
    """Printable units of a metric: the run's, else the known default (deaths are per day); "" if dimensionless."""
    given = (units or {}).get(name) or DEFAULT_UNITS.get(name) or ("1/d" if name.startswith("deaths_") else "")
    return "" if given == "1" else pretty_units(given)


def _units(run, name: str) -> str:
    return metric_units(getattr(run, "units", None), name)


def _plot(ax, df, column: str, label: str, **style) -> bool:
    """Plot one column against time, joining its defined (non-NaN) values; True when anything was drawn."""
    if column not in df.columns:
        return False
    values = df[column].to_numpy(float)
    defined = np.isfinite(values)
    if not defined.any():
        return False
    marker = "o" if defined.sum() <= 25 else None
    ax.plot(df.index.to_numpy(float)[defined], values[defined], label=label, marker=marker, ms=3, **style)
    return True


def _legend(ax, *twins, ncol: int = 1) -> None:
    """Legend of ``ax`` (and its twin axes) in the upper left, with headroom so it covers no data."""
    handles, labels = ax.get_legend_handles_labels()
    for other in twins:
        h, lab = other.get_legend_handles_labels()
        handles, labels = handles + h, labels + lab
    if not handles:
        return
    ax.legend(handles, labels, loc="upper left", ncol=ncol, fontsize=_SMALL, framealpha=0.9)
    rows = math.ceil(len(handles) / ncol)
    for each in (ax, *twins):
        _headroom(each, 0.08 + 0.075 * rows)


def _headroom(ax, fraction: float) -> None:
    """Raise the top of the y axis so the data fill only the lower ``1 - fraction`` (any scale)."""
    forward = ax.yaxis.get_transform()
    lo, hi = ax.get_ylim()
    a, b = forward.transform([lo, hi])
    if not b > a:
        return
    top = forward.inverted().transform([a + (b - a) / (1.0 - fraction)])[0]
    ax.set_ylim(lo, top)


def _death_columns(df) -> list[tuple[str, str, str]]:
    """``deaths_<kind>_<cause>`` columns as (column, kind, cause), known kinds matched first."""
    out = []
    for column in df.columns:
        if not column.startswith("deaths_"):
            continue
        rest = column[len("deaths_"):]
        kind = next((k for k in AGENT_STYLE if rest.startswith(k + "_")), rest.split("_", 1)[0])
        out.append((column, kind, rest[len(kind) + 1:] or "unspecified"))
    return out


def timeseries_figure(run) -> Figure:
    """Time courses of a run in six panels.

    Panels: BV/TV, porosity and cortical porosity (stacked, each on its own scale);
    BMD proxies vBMD, aBMD and TMD (stacked, each with its units); cell counts by type
    (colour) and stage (line style); turnover (volume resorbed and formed per day);
    deaths per day by type and cause (``deaths_*`` columns; "no deaths recorded" when
    there are none); marrow adiposity and active BMUs.
    """
    df = run.timeseries
    fig = Figure(figsize=(13, 12), layout="constrained")
    grid = fig.add_gridspec(3, 2)
    first = None

    def stack(cell, title: str, rows: Sequence[tuple[str, str, str]]) -> list:
        """A panel of thin axes, one per (column, label, colour), each autoscaled."""
        nonlocal first
        axes = []
        cells = cell.subgridspec(len(rows), 1, hspace=0.05)
        for i, (column, label, colour) in enumerate(rows):
            ax = fig.add_subplot(cells[i], sharex=first)
            first = first or ax
            if _plot(ax, df, column, label, color=colour):
                ax.set_ylabel(label, fontsize=_SMALL + 0.5)
                ax.margins(y=0.2)  # keep the line off the neighbouring axes
                ax.yaxis.set_major_locator(MaxNLocator(3, prune="both"))
                ax.yaxis.get_major_formatter().set_useOffset(False)
            else:
                _no_data(ax, f"{label.splitlines()[0]}: not recorded or undefined")
                ax.set_yticks([])
            axes.append(ax)
        axes[0].set_title(title)
        return axes

    bone_axes = stack(
        grid[0, 0],
        "Bone volume and porosity",
        (("bv_tv", "BV/TV", "black"), ("porosity", "porosity", "tab:blue"), ("cortical_porosity", "Ct.Po", "tab:red")),
    )
    bmd_axes = stack(
        grid[0, 1],
        "BMD proxies",
        tuple(
            (column, f"{label}\n({_units(run, column)})", colour)
            for column, label, colour in (
                ("vbmd_mg_cm3", "vBMD", "tab:blue"),
                ("abmd_g_cm2", "aBMD", "tab:green"),
                ("tmd_mg_cm3", "TMD", "tab:purple"),
            )
        ),
    )
    ax_cells, ax_turn, ax_death, ax_fat = (
        fig.add_subplot(grid[row, col], sharex=first) for row, col in ((1, 0), (1, 1), (2, 0), (2, 1))
    )

    ax_cells.set_title("Cells by type and stage")
    drawn = [
        df[column].max()
        for column, label, kind, style in _CELL_SERIES
        if _plot(ax_cells, df, column, label, color=AGENT_STYLE[kind].colour, ls=style, lw=1.6)
    ]
    positive = [m for m in drawn if m > 0]
    if positive and max(positive) > 30 * min(positive):
        ax_cells.set_yscale("symlog", linthresh=10)
    ax_cells.set_ylabel("cells")
    _legend(ax_cells, ncol=3)

    ax_turn.set_title("Turnover")
    _plot(ax_turn, df, "resorbed_um3_per_day", "resorbed", color="tab:red")
    _plot(ax_turn, df, "formed_um3_per_day", "formed", color="tab:blue")
    ax_turn.set_ylabel(f"matrix volume ({_units(run, 'resorbed_um3_per_day')})")
    ax_turn.ticklabel_format(axis="y", style="sci", scilimits=(-3, 4))
    _legend(ax_turn, ncol=2)

    ax_death.set_title("Deaths by cell type and cause")
    deaths = [d for d in _death_columns(df) if np.nansum(df[d[0]].to_numpy(float)) > 0]  # only causes that killed
    if deaths:
        causes = sorted({cause for _, _, cause in deaths})
        for column, kind, cause in deaths:
            label = f"{cell_style(kind).label}: {cause.replace('_', ' ')}"
            colour = AGENT_STYLE[kind].colour if kind in AGENT_STYLE else "0.3"
            _plot(ax_death, df, column, label, color=colour, ls=_DEATH_STYLES[causes.index(cause) % 4])
        _legend(ax_death, ncol=2)
    else:
        _no_data(ax_death, "no deaths recorded")
    ax_death.set_ylabel("deaths per day")

    ax_fat.set_title("Marrow adiposity and remodelling")
    _plot(ax_fat, df, "marrow_adiposity", "marrow adiposity (left axis)", color="goldenrod")
    ax_fat.set_ylabel("adipose fraction of marrow")
    ax_bmu = ax_fat.twinx()
    if _plot(ax_bmu, df, "active_bmus", "active BMUs (right axis)", color="tab:gray", ls="--"):
        ax_bmu.set_ylabel("active BMUs")
        ax_bmu.yaxis.set_major_locator(MaxNLocator(integer=True))
    _legend(ax_fat, ax_bmu, ncol=2)

    bottom = (bone_axes[-1], bmd_axes[-1], ax_death, ax_fat)
    for ax in fig.axes:
        ax.grid(alpha=0.3)
        ax.tick_params(labelsize=_SMALL + 0.5)
        if ax not in bottom:
            ax.tick_params(labelbottom=False)
        if isinstance(ax.yaxis.get_major_formatter(), ScalarFormatter):
            ax.yaxis.get_major_formatter().set_useMathText(True)  # "×10⁵", not "1e5"
    for ax in (ax_death, ax_fat):
        ax.set_xlabel("time (days)")
    name = (getattr(run, "scenario", None) or {}).get("name", "")
    fig.suptitle(f"Time series{f' of {name}' if name else ''}", fontsize=12)
    return fig


# ---------------------------------------------------------------------- 3-D surface
@dataclass
class SurfaceMesh:
    """Triangulated matrix surface: ``vertices_um`` (n, 3) as (x, y, z) in micrometres,
    ``faces`` (m, 3) vertex indices, ``ages_days`` (m,) matrix age under each face, and the
    ``factor`` by which the grid was coarsened."""

    vertices_um: np.ndarray
    faces: np.ndarray
    ages_days: np.ndarray
    factor: int


def surface_mesh(snap, target_voxels: int = 50, max_faces: int = 25_000, smooth: bool = True) -> SurfaceMesh | None:
    """The matrix (bone + osteoid) surface of a snapshot, each face with the age of the matrix it shows.

    The matrix mask is block-averaged to about ``target_voxels`` per edge, optionally
    smoothed (Gaussian, 0.8 blocks), padded so cut faces close, and triangulated by
    marching cubes at level 0.5 (coarser steps until at most ``max_faces`` faces).
    A face shows the matrix's outer layer (matrix voxels touching non-matrix or the block
    edge), so it takes the mean age of that layer in the block under its centre, or in the
    nearest block that has some; ``smooth`` widens that mean to a Gaussian of one block, so
    voxel-to-voxel scatter does not speckle old bone while a new seam or packet stays young.
    Returns None when there is no surface (no matrix, or nothing but matrix).
    """
    from scipy import ndimage
    from skimage.measure import block_reduce, marching_cubes

    matrix = (snap.label == Tissue.BONE) | (snap.label == Tissue.OSTEOID)
    if not matrix.any() or matrix.all():
        return None
    factor = max(1, math.ceil(max(snap.shape) / target_voxels))
    block = (factor,) * 3
    fraction = block_reduce(matrix.astype(np.float32), block, np.mean)
    outer = matrix & ~ndimage.binary_erosion(matrix, border_value=0)
    count = block_reduce(outer.astype(np.float64), block, np.sum)
    age_sum = block_reduce(np.where(outer, snap.matrix_age_days, 0).astype(np.float64), block, np.sum)
    if smooth:
        fraction = ndimage.gaussian_filter(fraction, 0.8)
        age_sum, count = ndimage.gaussian_filter(age_sum, 1.0), ndimage.gaussian_filter(count, 1.0)
    has_outer = count > 1e-6
    block_age = np.where(has_outer, age_sum / np.where(has_outer, count, 1.0), 0.0)
    nearest = ndimage.distance_transform_edt(~has_outer, return_distances=False, return_indices=True)
    block_age = block_age[tuple(nearest)]
    padded = np.pad(fraction, 1)
    if not padded.min() < 0.5 < padded.max():
        return None
    for step in range(1, 9):
        verts, faces, _, _ = marching_cubes(padded, 0.5, step_size=step)
        if len(faces) <= max_faces:
            break
    centres = np.clip(np.rint(verts[faces].mean(axis=1) - 1), 0, np.array(block_age.shape) - 1).astype(int)
    ages = block_age[centres[:, 0], centres[:, 1], centres[:, 2]]
    vertices_um = ((verts - 1 + 0.5) * factor * snap.voxel_um)[:, ::-1]
    return SurfaceMesh(vertices_um, faces, ages, factor)


def surface_figure(snap, target_voxels: int = 50, max_faces: int = 25_000, smooth: bool = True) -> Figure:
    """3-D surface of the matrix (bone and osteoid), faces coloured by matrix age (see :func:`surface_mesh`).

    The view looks in from the lateral face with the least matrix, so a cortex does not
    hide the trabeculae; the colour scale runs from new matrix (0 d) to the 99th
    percentile of the faces' ages.
    """
    fig = Figure(figsize=(8.5, 7.5))  # fixed placement: constrained layout clips 3-D axis labels
    ax = fig.add_axes((0.06, 0.02, 0.76, 0.88), projection="3d")
    title = f"Matrix surface at t = {snap.time_days:g} d"
    mesh = surface_mesh(snap, target_voxels, max_faces, smooth)
    if mesh is None:
        _no_data(ax, "no bone surface")
        fig.suptitle(title, fontsize=12)
        return fig
    ages = mesh.ages_days
    # From new matrix (0 d) up, so young packets stand out and the scatter of old bone is not stretched;
    # capped at the 99th percentile so a few very old faces do not darken everything else.
    norm = Normalize(0.0, max(float(np.percentile(ages, 99)), 1.0))
    cmap = "viridis"
    colours = ScalarMappable(norm, cmap).to_rgba(ages)
    surface = Poly3DCollection(
        mesh.vertices_um[mesh.faces],
        facecolors=colours,
        edgecolors=colours,
        linewidths=0.1,
        shade=True,
        lightsource=LightSource(azdeg=315, altdeg=35),
    )
    ax.add_collection3d(surface)
    nz, ny, nx = snap.shape
    size_um = np.array([nx, ny, nz], float) * snap.voxel_um
    ax.set_xlim(0, size_um[0])
    ax.set_ylim(0, size_um[1])
    ax.set_zlim(0, size_um[2])
    ax.set_box_aspect(size_um)
    side, azimuth = _open_side((snap.label == Tissue.BONE) | (snap.label == Tissue.OSTEOID))
    ax.view_init(elev=22, azim=azimuth)
    for axis in (ax.xaxis, ax.yaxis, ax.zaxis):
        axis.set_major_locator(MaxNLocator(5))
    ax.set_xlabel("x (µm)", labelpad=8)
    ax.set_ylabel("y (µm)", labelpad=8)
    ax.zaxis.set_rotate_label(False)  # else it turns upside down for some views
    ax.set_zlabel("z (µm)", labelpad=10, rotation=90)
    ax.tick_params(labelsize=_SMALL)
    fig.colorbar(
        ScalarMappable(norm, cmap),
        cax=fig.add_axes((0.86, 0.25, 0.025, 0.5)),
        extend="max" if ages.max() > norm.vmax else "neither",
        label="matrix age (days)",
    )
    grid = "full resolution" if mesh.factor == 1 else f"{mesh.factor}× coarser grid"
    fig.suptitle(f"{title}  ·  bone + osteoid, {grid}, {len(mesh.faces):,} faces, seen from {side}", fontsize=12)
    return fig


def _open_side(matrix: np.ndarray) -> tuple[str, float]:
    """The lateral face with the least matrix (so a cortex does not hide the trabeculae) and a 3/4 view azimuth."""
    faces = {  # face -> (its matrix, azimuth of a camera straight out from it)
        "y_min": (matrix[:, 0, :], -90.0),
        "x_max": (matrix[:, :, -1], 0.0),
        "y_max": (matrix[:, -1, :], 90.0),
        "x_min": (matrix[:, :, 0], 180.0),
    }
    side = min(faces, key=lambda name: faces[name][0].mean())
    return side, faces[side][1] + 30.0


# ---------------------------------------------------------------------- time-lapse
def timelapse_gif(
    run, path: str | os.PathLike, axis: str = "z", index: int | None = None, fps: float = 2.0, dpi: int = 80
) -> Path:
    """Animated GIF of one slice through every snapshot of ``run`` (one frame each).

    Args:
        run: an open run (``snapshot_times``, ``snapshot(t)``).
        path: the ``.gif`` to write.
        axis: ``"z"``, ``"y"`` or ``"x"``, the axis normal to the slice.
        index: slice index along ``axis``; None means the middle.
        fps: frames per second.
        dpi: resolution of the 6 x 6.4 inch frames.
    """
    if axis not in AXES:
        raise ValueError(f"axis: one of z, y, x (got {axis!r})")
    times = np.asarray(run.snapshot_times, float)
    if times.size == 0:
        raise ValueError("the run has no snapshots")
    normal = AXES[axis]
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig = Figure(figsize=(6, 6.4), layout="constrained")
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    tissues = _tissue_handles()
    cells = [_agent_handle(kind, style.label) for kind, style in reversed(AGENT_STYLE.items())]
    cells += [Line2D([], [], ls="", label=" ")] * (len(tissues) - len(cells))
    fig.legend(  # filled column by column: tissues on the first row, cells on the second
        handles=[h for pair in zip(tissues, cells) for h in pair],
        loc="outside lower center",
        ncol=len(tissues),
        fontsize=_SMALL,
        frameon=False,
        handletextpad=0.3,
        columnspacing=1.0,
    )
    writer = PillowWriter(fps=fps)
    with writer.saving(fig, str(path), dpi):
        for t in times:
            snap = run.snapshot(float(t))
            index_used = _check_index(snap.shape, normal, index)
            ax.clear()
            _draw_slice(ax, snap, normal, index_used, slab_voxels=2)
            horizontal, vertical = _PLANE[normal]
            ax.set_title(
                f"t = {snap.time_days:g} d   ({horizontal}-{vertical} plane, {axis} = {index_used})", fontsize=11
            )
            writer.grab_frame()
    return path

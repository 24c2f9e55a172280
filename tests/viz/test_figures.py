"""Figures: size, content, and no pyplot state left behind."""

from __future__ import annotations

import time

import matplotlib.image as mpimg
import matplotlib.pyplot as plt
import numpy as np
import pytest
from PIL import Image

from abm.geometry.state import Tissue
from abm.viz import figures
from abm.viz.figures import (
    fields_figure,
    save_figure,
    slices_figure,
    surface_figure,
    surface_mesh,
    timelapse_gif,
    timeseries_figure,
)
from tests.viz import synthetic


def _png(fig, path):
    """Save at 100 dpi, read back: (image, expected (height, width))."""
    save_figure(fig, path, dpi=100)
    width, height = fig.get_size_inches() * 100
    return mpimg.imread(path), (round(height), round(width))


def _assert_picture(image, size):
    assert image.shape[:2] == size
    assert len(np.unique(image.reshape(-1, image.shape[-1]), axis=0)) > 50, "not a picture: too few colours"


def _texts(fig) -> str:
    """Every string drawn on a figure (titles, labels, legends, annotations)."""
    return "\n".join(t.get_text() for t in fig.findobj(lambda a: hasattr(a, "get_text")))


@pytest.mark.parametrize(
    "name, make",
    [
        ("slices", lambda run: slices_figure(run.snapshot())),
        ("fields", lambda run: fields_figure(run.snapshot(), run.units)),
        ("timeseries", timeseries_figure),
        ("surface", lambda run: surface_figure(run.snapshot())),
    ],
)
def test_each_figure_is_a_picture_of_its_stated_size(tmp_path, fake_run, name, make):
    image, size = _png(make(fake_run), tmp_path / f"{name}.png")
    _assert_picture(image, size)


def test_figures_leave_no_pyplot_figures_open(tmp_path, fake_run):
    before = plt.get_fignums()
    snap = fake_run.snapshot()
    made = (slices_figure(snap), fields_figure(snap, fake_run.units), timeseries_figure(fake_run), surface_figure(snap))
    for fig in made:
        save_figure(fig, tmp_path / "f.png")
    timelapse_gif(fake_run, tmp_path / "t.gif")
    assert plt.get_fignums() == before


def test_tissue_colours_bone_grey_by_mineral_and_other_tissues_distinct():
    label = np.array([[Tissue.MARROW, Tissue.BONE, Tissue.BONE, Tissue.OSTEOID, Tissue.VESSEL, Tissue.ADIPOSE]])
    mineral = np.array([[0.0, 0.2, 1.0, 0.0, 0.0, 0.0]])
    rgb = figures._tissue_rgb(label, mineral)[0]
    marrow, low, high, osteoid, vessel, adipose = rgb
    assert marrow.max() < 0.15, "marrow is dark"
    assert np.ptp(low) == np.ptp(high) == 0 and high[0] > low[0] > marrow[0], "bone is grey, brighter with mineral"
    assert len({tuple(c) for c in (marrow, high, osteoid, vessel, adipose)}) == 5


def test_slices_draw_cells_on_their_slice_only(fake_run):
    snap = fake_run.snapshot()
    z_slice = slices_figure(snap, indices=(31, None, None), slab_voxels=0).axes[0]
    drawn = np.concatenate([c.get_offsets() for c in z_slice.collections if len(c.get_offsets())])
    osteoclasts = snap.agents["osteoclast"]  # all at z = 31
    expected = sum(int((frame["z"] == 31).sum()) for frame in snap.agents.values())
    assert len(drawn) == expected >= len(osteoclasts)
    assert {tuple(p) for p in osteoclasts[["x", "y"]].to_numpy(float)} <= {tuple(p) for p in drawn}


def test_slices_titles_name_plane_and_index_and_reject_an_index_outside(fake_run):
    fig = slices_figure(fake_run.snapshot(), indices=(5, None, 39))
    titles = [ax.get_title() for ax in fig.axes[:3]]
    assert titles[0].startswith("x-y plane, z = 5") and titles[1].startswith("x-z plane, y = 20")
    assert titles[2].startswith("y-z plane, x = 39")
    assert "µm" in _texts(fig), "scale bar in micrometres"
    with pytest.raises(ValueError, match="x index 40 is outside the volume"):
        slices_figure(fake_run.snapshot(), indices=(None, None, 40))


def test_fields_have_one_panel_and_colour_bar_with_units_each(fake_run):
    fig = fields_figure(fake_run.snapshot(), fake_run.units)
    labels = [ax.get_ylabel() for ax in fig.axes]
    assert "RANKL (pM)" in labels and "glucose (mM)" in labels
    assert sorted(ax.get_title() for ax in fig.axes if ax.get_title()) == ["RANKL", "glucose"]


def test_timeseries_units_and_deaths_by_cause(fake_run):
    text = _texts(timeseries_figure(fake_run))
    for expected in ("mg HA/cm³", "g/cm²", "µm³/d", "osteoblasts: apoptosis", "osteoblasts: ferroptosis",
                     "resorbing osteoclasts", "time (days)"):
        assert expected in text
    assert "no deaths recorded" not in text
    assert "adipocytes: apoptosis" not in text, "a cause that killed no cell is left out"


def test_timeseries_says_no_deaths_recorded_when_the_file_has_none(fake_run):
    fake_run.timeseries = synthetic.timeseries(deaths=False)
    assert "no deaths recorded" in _texts(timeseries_figure(fake_run))


def test_surface_of_a_100_cube_is_downsampled_capped_and_quick(tmp_path, fake_run):
    snap = fake_run.snapshot()
    big = synthetic.SnapshotData(
        time_days=5.0,
        label=np.tile(snap.label, (3, 3, 3))[:100, :100, :100],
        mineral=np.tile(snap.mineral, (3, 3, 3))[:100, :100, :100],
        matrix_age_days=np.tile(snap.matrix_age_days, (3, 3, 3))[:100, :100, :100],
        age_products_au=np.zeros((100, 100, 100), np.float32),
        fields={},
        agents={},
        shape=(100, 100, 100),
    )
    start = time.perf_counter()
    fig = surface_figure(big, max_faces=20_000)
    save_figure(fig, tmp_path / "surface.png")
    elapsed = time.perf_counter() - start
    (surface,) = fig.axes[0].collections
    assert len(surface.get_facecolor()) <= 20_000
    assert "2× coarser grid" in fig._suptitle.get_text()
    assert "matrix age (days)" in [ax.get_ylabel() for ax in fig.axes]
    assert elapsed < 10


def _face_centres_voxels(mesh):
    """Face centres as (x, y, z) voxel-centre coordinates."""
    return mesh.vertices_um[mesh.faces].mean(axis=1) / synthetic.VOXEL_UM - 0.5


@pytest.mark.parametrize("smooth", [False, True])
def test_surface_faces_show_the_age_of_the_matrix_they_cover(fake_run, smooth):
    """At 30 d: a 2-d osteoid seam lies on the 1530-d lower plate; the upper plate is 330 d old.

    Each face takes the age of the matrix layer it shows, so the seam stays young on its old
    plate even when smoothed, and the plates keep their own ages."""
    mesh = surface_mesh(fake_run.snapshot(), smooth=smooth)
    x, y, z = _face_centres_voxels(mesh).T
    seam = (np.abs(z - 12.5) < 0.3) & (x < 13) & (y > 7) & (y < 15)
    upper_top = (np.abs(z - 30.5) < 0.3) & ((y - 20) ** 2 + (x - 30) ** 2 > 36) & (x > 2) & (x < 37)
    lower_bottom = (np.abs(z - 7.5) < 0.3) & (x > 2) & (x < 37) & (y > 2) & (y < 37)
    assert seam.sum() > 20 and upper_top.sum() > 100 and lower_bottom.sum() > 100
    tolerance = 30.0 if smooth else 1e-3
    assert np.median(mesh.ages_days[seam]) == pytest.approx(2.0, abs=tolerance)
    assert np.median(mesh.ages_days[upper_top]) == pytest.approx(330.0, abs=tolerance)
    assert np.median(mesh.ages_days[lower_bottom]) == pytest.approx(1530.0, abs=tolerance)


def test_surface_colour_scale_runs_from_new_matrix_to_the_oldest(fake_run):
    fig = surface_figure(fake_run.snapshot(), smooth=False)
    colorbar = next(ax for ax in fig.axes if ax.get_ylabel() == "matrix age (days)")
    assert colorbar.get_ylim() == pytest.approx((0.0, 1530.0))


def test_no_matrix_means_no_surface(fake_run):
    snap = fake_run.snapshot()
    snap.label = np.zeros_like(snap.label)
    assert surface_mesh(snap) is None
    assert "no bone surface" in _texts(surface_figure(snap))


def test_timelapse_has_one_frame_per_snapshot(tmp_path, fake_run):
    path = timelapse_gif(fake_run, tmp_path / "lapse.gif", axis="x", index=30)
    with Image.open(path) as gif:
        assert gif.n_frames == len(fake_run.snapshot_times) == 4
        frames = []
        for i in range(gif.n_frames):
            gif.seek(i)
            frames.append(np.asarray(gif.convert("RGB")))
    assert all(not np.array_equal(a, b) for a, b in zip(frames, frames[1:]))


def test_timelapse_rejects_a_bad_axis(tmp_path, fake_run):
    with pytest.raises(ValueError, match="axis"):
        timelapse_gif(fake_run, tmp_path / "x.gif", axis="w")

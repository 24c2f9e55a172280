"""Volume fractions, Euler characteristic and connectivity against known answers."""

from __future__ import annotations

import numpy as np
import pytest

from abm.analysis import morphometry as m
from tests.analysis.shapes import ball, blobs, cubic_lattice, plate, torus


def test_bv_tv_of_a_box_is_exact():
    volume = np.zeros((20, 30, 40), dtype=bool)
    volume[2:7, 5:17, 10:35] = True
    assert m.bv_tv(volume) == 5 * 12 * 25 / (20 * 30 * 40)
    assert m.porosity(volume) == (20 * 30 * 40 - 5 * 12 * 25) / (20 * 30 * 40)


def test_bv_tv_of_a_ball_counts_its_voxels_exactly():
    shape = (31, 31, 31)
    volume = ball(shape, (15, 15, 15), 10.0)
    # voxel centres with integer offsets inside radius 10, counted independently
    offsets = np.arange(-15, 16)
    count = sum(1 for a in offsets for b in offsets for c in offsets if a * a + b * b + c * c <= 100)
    assert m.bv_tv(volume) == count / 31**3


def test_region_restricts_bv_tv_and_porosity():
    volume = plate((10, 10, 10), 0, 5)  # bone in z < 5
    region = np.zeros_like(volume)
    region[3:7] = True  # half bone, half marrow
    assert m.bv_tv(volume, region) == 0.5
    assert m.porosity(volume, region) == 0.5


def test_cortical_porosity_is_the_pore_fraction_of_the_cortex():
    shape = (10, 20, 20)
    cortex = np.zeros(shape, dtype=bool)
    cortex[:, :4] = True
    bone = cortex.copy()
    bone[:, 1, 3:7] = False  # a canal of 10 x 4 voxels in a cortex of 10 x 4 x 20
    assert m.cortical_porosity(bone, cortex) == 40 / 800


def test_marrow_adiposity_is_the_adipose_fraction_of_marrow():
    marrow = np.zeros((4, 5, 5), dtype=bool)
    marrow[:2] = True
    adipose = np.zeros_like(marrow)
    adipose[0, :2] = True
    assert m.marrow_adiposity(adipose, marrow) == 10 / 50


def test_tb_n_is_the_inverse_of_thickness_plus_spacing():
    assert m.tb_n_per_mm(200.0, 800.0) == pytest.approx(1.0)


def test_plates_give_tb_th_tb_sp_and_tb_n_in_physical_units():
    volume = np.zeros((56, 16, 16), dtype=bool)
    for start in range(5, 56, 14):
        volume[start : start + 4] = True
    th, sp = m.tb_th_um(volume, 25.0), m.tb_sp_um(volume, 25.0)
    assert (th, sp) == (100.0, 250.0)
    assert m.tb_n_per_mm(th, sp) == pytest.approx(1000.0 / (14 * 25.0))  # plates per mm


@pytest.mark.parametrize("n", [1, 2, 5])
def test_euler_of_n_disjoint_balls_is_n(n):
    shape = (24, 24, 24 * n)
    volume = np.zeros(shape, dtype=bool)
    for i in range(n):
        volume |= ball(shape, (12, 11, 12 + 24 * i), 8.0)
    assert m.euler_characteristic(volume) == n


def test_euler_of_a_torus_is_zero():
    assert m.euler_characteristic(torus(40, 12.0, 4.0)) == 0


def test_euler_of_a_hollow_sphere_is_two():
    shape = (31, 31, 31)
    shell = ball(shape, (15, 15, 15), 12.0) & ~ball(shape, (15, 15, 15), 8.0)
    assert m.euler_characteristic(shell) == 2


def test_euler_treats_the_volume_as_isolated():
    # the ball is cut by the array faces; padding closes it into one solid
    assert m.euler_characteristic(ball((20, 20, 20), (0, 0, 0), 12.0)) == 1
    assert m.euler_characteristic(np.ones((6, 6, 6), dtype=bool)) == 1


@pytest.mark.parametrize("shift", [(0, 0, 0), (5, 5, 5), (2, 7, 3), (6, 1, 9)])
def test_delta_euler_of_a_lattice_is_minus_two_per_cell_wherever_it_is_cut(shift):
    # an infinite cubic lattice has one node and three rods per cell: chi = 1 - 3
    lattice = cubic_lattice(period=10, cells=3, width=3, shift=shift)
    assert m.delta_euler(lattice) == -2 * 27


def test_conn_d_of_a_lattice():
    lattice = cubic_lattice(period=10, cells=3, width=3, shift=(2, 7, 3))
    volume_mm3 = lattice.size * (0.02**3)
    assert m.conn_d_per_mm3(lattice, 20.0) == pytest.approx((1 + 54) / volume_mm3)


def test_a_rod_through_the_volume_adds_no_connectivity():
    rod = np.zeros((20, 20, 20), dtype=bool)
    rod[:, 8:12, 8:12] = True
    assert m.euler_characteristic(rod) == 1
    assert m.delta_euler(rod) == 0
    assert m.conn_d_per_mm3(rod, 10.0) == pytest.approx(1 / (20 * 0.01) ** 3)


def test_tb_th_in_micrometres_scales_with_voxel_size():
    volume = blobs(4, size=32)
    assert m.tb_th_um(volume, 20.0) == pytest.approx(2 * m.tb_th_um(volume, 10.0))

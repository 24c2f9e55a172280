"""Time every morphometry and BMD measurement on 100^3 volumes against the targets.

Targets (so measurements can run every simulated week): each measurement
under 0.1 s except Tb.Th and Tb.Sp, which must stay under 2 s. Volumes: a
level set of smoothed noise with BV/TV 0.2 and, when present, the central
100^3 crop of the real sample in ../shared/data. porespy's local_thickness on
the same phases is timed as the reference: its default integer radii (fast,
rounds spheres down) and, for Tb.Th, fractional radii (exact like ours).

Usage: python scripts/bench_morphometry.py
The last line printed is one JSON object of timings (s) and ``targets_met``.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
from scipy import ndimage

from abm.analysis import bmd, morphometry
from abm.analysis.measure import measure

SIZE = 100
VOXEL_UM = 20.0
REAL = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "lhdl_trabecular_19.5um.npy"
FAST_S, THICKNESS_S = 0.1, 2.0


def synthetic_volume(seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Trabecular-like bone (BV/TV 0.2) and a mineral fraction varying 0.6..1 over bone."""
    rng = np.random.default_rng(seed)
    noise = ndimage.gaussian_filter(rng.standard_normal((SIZE,) * 3), 3.0)
    bone = noise > np.quantile(noise, 0.8)
    mineral = np.where(bone, rng.uniform(0.6, 1.0, bone.shape), 0.0).astype(np.float32)
    return bone, mineral


def real_volume() -> np.ndarray | None:
    """Central 100^3 crop of the real sample at its Otsu threshold, or None if absent."""
    if not REAL.exists():
        return None
    start = (np.load(REAL, mmap_mode="r").shape[0] - SIZE) // 2
    crop = np.load(REAL, mmap_mode="r")[start : start + SIZE, start : start + SIZE, start : start + SIZE]
    return np.asarray(crop) > 84


def best_of(fn: Callable[[], object], repeats: int = 3) -> float:
    """Shortest wall time of ``repeats`` calls, seconds."""
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def cases(bone: np.ndarray, mineral: np.ndarray) -> dict[str, tuple[Callable[[], object], float | None]]:
    """Measurement name -> (call, target seconds or None for information only)."""
    cortex = np.zeros(bone.shape, dtype=bool)
    cortex[:, :10] = True
    marrow = ~bone
    adipose = marrow & (np.arange(bone.size).reshape(bone.shape) % 3 == 0)
    return {
        "bv_tv": (lambda: morphometry.bv_tv(bone), FAST_S),
        "porosity": (lambda: morphometry.porosity(bone), FAST_S),
        "cortical_porosity": (lambda: morphometry.cortical_porosity(bone, cortex), FAST_S),
        "marrow_adiposity": (lambda: morphometry.marrow_adiposity(adipose, marrow), FAST_S),
        "euler": (lambda: morphometry.euler_characteristic(bone), FAST_S),
        "conn_d": (lambda: morphometry.conn_d_per_mm3(bone, VOXEL_UM), FAST_S),
        "vbmd": (lambda: bmd.vbmd_mg_cm3(mineral), FAST_S),
        "abmd": (lambda: bmd.abmd_g_cm2(mineral, bone, VOXEL_UM), FAST_S),
        "tmd": (lambda: bmd.tmd_mg_cm3(mineral, bone), FAST_S),
        "tb_th": (lambda: morphometry.tb_th_um(bone, VOXEL_UM), THICKNESS_S),
        "tb_sp": (lambda: morphometry.tb_sp_um(bone, VOXEL_UM), THICKNESS_S),
        "measure_all": (lambda: measure(bone, VOXEL_UM, mineral=mineral), None),
    }


def porespy_reference(bone: np.ndarray, ours: dict[str, float]) -> dict[str, float]:
    """porespy local_thickness on bone and marrow (default: integer radii), and our speed-up."""
    try:
        import porespy
    except ImportError:
        return {}
    porespy.settings.tqdm["disable"] = True
    porespy.filters.local_thickness(bone[:20, :20, :20])  # its numba compile is not the measurement
    result = {}
    for name, phase in (("tb_th", bone), ("tb_sp", ~bone)):
        seconds = best_of(lambda: porespy.filters.local_thickness(phase))
        result[f"porespy_{name}"] = seconds
        print(f"  porespy {name:<12}{seconds:>8.4f} s   speed-up of ours x{seconds / ours[name]:.2f}")
    # integer radii round every sphere down; fractional radii match our exact method
    radii = np.unique(ndimage.distance_transform_edt(bone)[bone])
    seconds = best_of(lambda: porespy.filters.local_thickness(bone, method="legacy", sizes=radii), repeats=1)
    result["porespy_tb_th_fractional"] = seconds
    print(f"  porespy tb_th, fractional radii {seconds:>8.4f} s   speed-up of ours x{seconds / ours['tb_th']:.2f}")
    return result


def bench(label: str, bone: np.ndarray, mineral: np.ndarray) -> tuple[dict[str, float], bool]:
    """Print one volume's timing table; return timings and whether all targets were met."""
    print(f"\n{label}: {SIZE}^3 voxels, BV/TV {bone.mean():.3f}")
    print(f"  {'measurement':<20}{'best of 3':>10}   target")
    timings, met = {}, True
    for name, (fn, target) in cases(bone, mineral).items():
        timings[name] = seconds = best_of(fn)
        ok = target is None or seconds < target
        met &= ok
        goal = "(info)" if target is None else f"< {target:g} s  {'ok' if ok else 'MISSED'}"
        print(f"  {name:<20}{seconds:>8.4f} s   {goal}")
    timings.update(porespy_reference(bone, timings))
    return timings, met


def main() -> None:
    bone, mineral = synthetic_volume()
    start = time.perf_counter()
    measure(bone[:20, :20, :20], VOXEL_UM, mineral=mineral[:20, :20, :20])  # numba compile or cache load
    print(f"warm-up (numba compile / cache load): {time.perf_counter() - start:.2f} s")
    report = {}
    report["synthetic"], met = bench("synthetic level set", bone, mineral)
    real = real_volume()
    if real is not None:
        report["real_crop"], real_met = bench("real sample, central crop", real, real.astype(np.float32))
        met &= real_met
    report["targets_met"] = met
    print(json.dumps(report))


if __name__ == "__main__":
    main()

"""Disease scenarios against the published figures (issue 7's calibration targets).

Runs the scenario arms with replicates, each in a fresh process with one numba
thread (Mesa 3.3.1 leaks models; results do not depend on the thread count), and
prints each figure beside its target:

- estrogen withdrawal (postmenopausal vs premenopausal): trabecular BMD change, %/yr,
  over the first 2 years (target -2.5 to -3.3 %/yr; Greendale 2012 SWAN, Sowers
  2010) and after (about -1 %/yr), with the whole-block aBMD change beside it;
- T2DM vs healthy: areal BMD proxy equal or up to 5 % higher (Vestergaard 2007);
  resorbed and formed volume per day 20-40 % lower (Hygum 2017); cortical porosity
  at least 25 % higher (Burghardt 2010, Patsch 2013); marrow adiposity higher; more
  ferroptotic osteoblast deaths;
- treatments in postmenopausal T2DM: the direction of each (deferoxamine lowers
  ferroptotic deaths, anti-TNF lowers the loss, alendronate raises BMD, ...).

The default is a 60^3 block (1.2 mm) for 4 years with 3 seeds per arm: about 10 min
per replicate on one core, so the three base arms take about 50 min on 2 cores and all
15 arms about 4 h. A 60^3 block sees only 1-5 BMUs a year, so single figures carry
Poisson noise of tens of percent; more seeds (or ``--size 100``, 5x slower) narrow it.
``--years 1 --seeds 1`` is a quick look. Each figure is printed with its standard
error over seeds (arms are paired by seed; every run starts from the same synthetic
block and the seed sets the cells' random stream). The last line is one JSON object with the figures, their standard errors and
``targets_met``.

Every finished replicate is saved in ``--cache`` (default ``runs/calibration``) under a
key made of the arm, seed, length, resolved scenario and the simulator's source, so an
interrupted calibration resumes where it stopped and a rerun with more arms or seeds
simulates only what is new. ``--cache ''`` turns the cache off.

For many replicates (a cluster), run ``scripts/calibration_batch.toml`` with ``abm batch``
(local pool or ``--cluster``, resumable) and read its figures with ``--from-batch
batches/disease_calibration``: replicates stand in for seeds.

Usage: python scripts/calibrate_disease.py [--arms premenopausal postmenopausal ...] [--years 4]
       [--seeds 3] [--size 60] [--workers 2] [--set KEY=VALUE ...] [--cache DIR]
       python scripts/calibrate_disease.py --from-batch batches/disease_calibration
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import time
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
CONFIGS = ROOT / "configs"
BASE_ARMS = ("premenopausal", "postmenopausal", "t2dm", "pm_t2dm")
TREATMENTS = (
    "deferoxamine", "nac", "ferrostatin", "anti_tnf", "alendronate", "teriparatide", "raloxifene",
    "hormone_therapy", "metformin", "glp1", "vitamin_d",
)
SERIES = ("abmd_g_cm2", "vbmd_mg_cm3", "trabecular_vbmd_mg_cm3", "bv_tv", "porosity", "cortical_porosity", "marrow_adiposity",
          "resorbed_um3_per_day", "formed_um3_per_day", "deaths_osteoblast_ferroptosis", "matrix_age_products_au",
          "bmu_activations", "expected_bmu_activations", "bmu_activations_inhibited_by_glucose")


def _scenario(arm: str, size: int, overrides: tuple[str, ...]):
    from abm.config import load_scenario

    return load_scenario(CONFIGS / f"{arm}.toml", [f"geometry.shape_voxels=[{size}, {size}, {size}]", *overrides])


def replicate_key(arm: str, seed: int, days: float, size: int, overrides: tuple[str, ...] = ()) -> str:
    """Cache key of one replicate: arm, seed, length, the saved series, the resolved scenario and the
    simulator's source."""
    import abm
    from abm.config.loader import to_toml

    digest = hashlib.sha256(f"{arm}|{seed}|{days!r}|{','.join(SERIES)}|".encode())
    digest.update(to_toml(_scenario(arm, size, overrides)).encode())
    for path in sorted(Path(abm.__file__).parent.rglob("*.py")):
        digest.update(path.read_bytes())
    return f"{arm}_s{seed}_{digest.hexdigest()[:16]}"


def run_cached(arm: str, seed: int, days: float, size: int, overrides: tuple[str, ...] = (), cache: str = "") -> dict:
    """:func:`run_one`, or its saved result from ``cache`` (a directory; empty: no cache)."""
    if not cache:
        return run_one(arm, seed, days, size, overrides)
    path = Path(cache) / f"{replicate_key(arm, seed, days, size, overrides)}.npz"
    if path.exists():
        with np.load(path) as saved:
            return {"arm": arm, "seed": seed, "days": saved["days"], "wall_s": float(saved["wall_s"]), "cached": True,
                    "series": {name: saved[f"series/{name}"] for name in SERIES}}
    result = run_one(arm, seed, days, size, overrides)
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".partial")
    with open(partial, "wb") as f:  # written whole, then renamed: a killed run leaves no half file
        np.savez(f, days=result["days"], wall_s=result["wall_s"],
                 **{f"series/{name}": values for name, values in result["series"].items()})
    os.replace(partial, path)
    return result


def run_one(arm: str, seed: int, days: float, size: int, overrides: tuple[str, ...] = ()) -> dict:
    """One replicate of one arm in this (fresh) process."""
    import numba

    from abm.model import BoneModel

    numba.set_num_threads(1)
    model = BoneModel(_scenario(arm, size, overrides), seed=seed)
    start = time.perf_counter()
    for _ in range(int(round(days * 24 / model.dt_h))):
        model.step()
    frame = model.datacollector.get_model_vars_dataframe()
    return {
        "arm": arm, "seed": seed, "days": np.asarray(model.collected_days),
        "series": {name: frame[name].to_numpy(float) for name in SERIES},
        "wall_s": time.perf_counter() - start,
    }


def rate_percent_per_year(days: np.ndarray, values: np.ndarray, start: float, stop: float) -> float:
    """Least-squares slope over [start, stop] days, %/yr of the value at ``start``."""
    window = (days >= start) & (days <= stop)
    if window.sum() < 3:
        return float("nan")
    slope = np.polyfit(days[window] / 365.25, values[window], 1)[0]
    return float(100.0 * slope / values[window][0])


def runs_from_batch(folder: str) -> list[dict]:
    """The replicates of an ``abm batch`` folder (arms named after the scenarios) in :func:`run_one`'s form."""
    from abm.io.batch import open_batch

    table = open_batch(folder)
    runs = []
    for (arm, replicate), rows in table.groupby(["arm", "replicate"], sort=False):
        rows = rows.sort_values("time_days")
        runs.append({"arm": str(arm), "seed": int(replicate), "days": rows["time_days"].to_numpy(float),
                     "series": {name: rows[name].to_numpy(float) for name in SERIES}, "wall_s": float("nan"),
                     "cached": True})
    return runs


def tail_mean(run: dict, name: str, last_days: float) -> float:
    """Mean of one replicate's series over its last ``last_days``."""
    tail = run["days"] >= run["days"][-1] - last_days
    return float(np.nanmean(run["series"][name][tail]))


def mean_se(values: list[float]) -> tuple[float, float]:
    """Mean and standard error of the mean (nan with fewer than 2 values)."""
    v = np.asarray(values, float)
    if not len(v):
        return float("nan"), float("nan")
    return float(v.mean()), float(v.std(ddof=1) / np.sqrt(len(v))) if len(v) > 1 else float("nan")


def paired(runs: list[dict], arm: str, ref: str, figure) -> tuple[float, float]:
    """Mean and standard error over seeds of ``figure(run of arm, run of ref)``, pairing replicates by seed
    (every run starts from the same synthetic block; the seed sets the cells' random stream)."""
    refs = {r["seed"]: r for r in runs if r["arm"] == ref}
    return mean_se([figure(r, refs[r["seed"]]) for r in runs if r["arm"] == arm and r["seed"] in refs])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--arms", nargs="+", default=[*BASE_ARMS, *(f"pm_t2dm_{t}" for t in TREATMENTS)])
    parser.add_argument("--years", type=float, default=4.0)
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--size", type=int, default=60, help="block edge, voxels")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="config override applied to every arm (repeatable), e.g. signalling.estrogen.refill_loss=0.2")
    parser.add_argument("--cache", default=str(ROOT / "runs" / "calibration"),
                        help="directory of finished replicates, reused when arm, seed, length, scenario and source"
                             " match ('' for none)")
    parser.add_argument("--from-batch", metavar="DIR",
                        help="read the replicates of an abm batch folder (scripts/calibration_batch.toml) instead of"
                             " simulating; --arms, --years, --seeds, --size, --set and --cache are then ignored")
    args = parser.parse_args()
    if args.from_batch:
        runs = runs_from_batch(args.from_batch)
        args.arms = list(dict.fromkeys(r["arm"] for r in runs))
        args.seeds = len({r["seed"] for r in runs})
        days = float(min(r["days"][-1] for r in runs))
        args.years = days / 365.25
        shape = "batch " + str(args.from_batch)
    else:
        days = 365.25 * args.years
        jobs = [(arm, seed) for arm in args.arms for seed in range(args.seeds)]
        n = len(jobs)
        with ProcessPoolExecutor(args.workers, mp_context=get_context("spawn"), max_tasks_per_child=1) as pool:
            runs = list(pool.map(run_cached, [a for a, _ in jobs], [s for _, s in jobs], [days] * n, [args.size] * n,
                                 [tuple(args.set)] * n, [args.cache] * n))
        shape = f"{args.size}^3 voxels"

    def relative(arm: str, ref: str, name: str, last: float = days) -> tuple[float, float]:
        """Percent difference from the reference arm of the mean over the last ``last`` days (default: the
        whole run, for the turnover rates; levels such as aBMD and porosity use the last year)."""
        def pct(a: dict, b: dict) -> float:
            ref_value = tail_mean(b, name, last)
            return 100.0 * (tail_mean(a, name, last) - ref_value) / ref_value if ref_value else float("nan")
        return paired(runs, arm, ref, pct)

    def activation_ratio(arm: str, ref: str) -> float:
        """Ratio of the arms' BMU activations over all replicates (the series is cumulative); nan if the
        reference had none."""
        def total(name: str) -> float:
            return float(sum(r["series"]["bmu_activations"][-1] for r in runs if r["arm"] == name))
        return total(arm) / total(ref) if total(ref) else float("nan")

    figures: dict[str, float] = {}
    errors: dict[str, float] = {}
    targets: dict[str, bool] = {}
    rows = []

    def add(key: str, label: str, value: tuple[float, float], target: str) -> float:
        figures[key], errors[key] = value
        rows.append((label, *value, target))
        return value[0]

    if {"premenopausal", "postmenopausal"} <= set(args.arms):
        # SWAN measured spine aBMD, which DXA takes mostly from trabecular bone; the block's cortex (a third
        # of a 60^3 block, half its mineral) barely remodels and would dilute the loss, so the figure is the
        # trabecular compartment's vBMD; the whole-block aBMD change is printed beside it.
        def change(name: str, start: float, stop: float) -> tuple[float, float]:
            return paired(runs, "postmenopausal", "premenopausal", lambda a, b: (
                rate_percent_per_year(a["days"], a["series"][name], start, stop)
                - rate_percent_per_year(b["days"], b["series"][name], start, stop)))

        early = add("estrogen_loss_early_pct_per_year", "trabecular BMD change, years 0-2, %/yr (post - pre)",
                    change("trabecular_vbmd_mg_cm3", 0, min(730, days)), "-3.3 .. -2.5")
        late = add("estrogen_loss_late_pct_per_year", "trabecular BMD change, after year 2, %/yr",
                   change("trabecular_vbmd_mg_cm3", 730, days), "about -1")
        add("estrogen_loss_abmd_early_pct_per_year", "  whole-block aBMD change, years 0-2, %/yr",
            change("abmd_g_cm2", 0, min(730, days)), "(diluted by cortex)")
        add("estrogen_loss_abmd_late_pct_per_year", "  whole-block aBMD change, after year 2, %/yr",
            change("abmd_g_cm2", 730, days), "(diluted by cortex)")
        targets["estrogen_loss_early_-3.3_to_-2.5"] = bool(-3.3 <= early <= -2.5)
        targets["estrogen_loss_late_about_-1"] = bool(-1.5 <= late <= -0.5) if days > 730 else False
        add("estrogen_loss_activation_ratio", "BMU activations, post / pre",
            (activation_ratio("postmenopausal", "premenopausal"), float("nan")),
            "about 2-3 (Recker 2004)")
    if {"premenopausal", "t2dm"} <= set(args.arms):
        checks = {
            "abmd": (relative("t2dm", "premenopausal", "abmd_g_cm2", 365.0), "0 .. +5 %", lambda v: 0 <= v <= 5),
            "resorbed": (relative("t2dm", "premenopausal", "resorbed_um3_per_day"), "-40 .. -20 %", lambda v: -40 <= v <= -20),
            "formed": (relative("t2dm", "premenopausal", "formed_um3_per_day"), "-40 .. -20 %", lambda v: -40 <= v <= -20),
            "cortical_porosity": (relative("t2dm", "premenopausal", "cortical_porosity", 365.0), ">= +25 %", lambda v: v >= 25),
            "marrow_adiposity": (relative("t2dm", "premenopausal", "marrow_adiposity", 365.0), "> 0 %", lambda v: v > 0),
        }
        for key, (value, target, ok) in checks.items():
            targets[f"t2dm_{key}"] = bool(ok(add(f"t2dm_vs_healthy_{key}_pct", f"T2DM vs healthy: {key.replace('_', ' ')}, %",
                                                 value, target)))
        add("t2dm_activation_ratio", "BMU activations, T2DM / healthy",
            (activation_ratio("t2dm", "premenopausal"), float("nan")), "about 0.6-0.8")
        # healthy osteoblasts hardly ever die by ferroptosis: compare the rates, not their ratio
        deaths = {arm: mean_se([tail_mean(r, "deaths_osteoblast_ferroptosis", days) for r in runs if r["arm"] == arm])
                  for arm in ("t2dm", "premenopausal")}
        add("healthy_ferroptotic_ob_deaths_per_day", "ferroptotic OB deaths/day, healthy", deaths["premenopausal"], "")
        t2dm_deaths = add("t2dm_ferroptotic_ob_deaths_per_day", "ferroptotic OB deaths/day, T2DM", deaths["t2dm"],
                          "> healthy")
        targets["t2dm_more_ferroptotic_ob_deaths"] = bool(t2dm_deaths > deaths["premenopausal"][0])
    for t in TREATMENTS:
        arm = f"pm_t2dm_{t}"
        if arm in args.arms and "pm_t2dm" in args.arms:
            value = add(f"{t}_abmd_vs_untreated_pct", f"{t}: aBMD vs untreated PM-T2DM, %",
                        relative(arm, "pm_t2dm", "abmd_g_cm2", 365.0), "> 0 % (less loss)")
            targets[f"{t}_raises_abmd"] = bool(value > 0)

    cached = sum(bool(r.get("cached")) for r in runs)
    print(f"{len(args.arms)} arms x {args.seeds} seeds, {shape}, {args.years:g} years"
          f" ({cached} of {len(runs)} replicates not simulated now)")
    print(f"{'figure':<52} {'value':>9} {'+- se':>7}   target")
    for label, value, se, target in rows:
        print(f"{label:<52} {value:>+9.3g} {se:>7.2g}   {target}")
    simulated = [r["wall_s"] for r in runs if not r.get("cached")]
    if simulated:
        print(f"wall time per simulated replicate: {np.mean(simulated):.0f} s")
    def finite(values: dict[str, float]) -> dict[str, float | None]:  # strict JSON: nan -> null
        return {k: (v if np.isfinite(v) else None) for k, v in values.items()}
    print(json.dumps({"figures": finite(figures), "standard_errors": finite(errors), "targets_met": targets},
                     allow_nan=False))


if __name__ == "__main__":
    from abm.errors import UserError

    try:
        main()
    except UserError as error:  # bad arm, override or size: one line, no traceback
        raise SystemExit(f"calibrate_disease: {error}") from None

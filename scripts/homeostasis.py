"""Healthy homeostasis of the baseline scenario, against the published figures.

Runs ``configs/baseline.toml`` (100^3 voxels of 20 um) for a spin-up plus two
simulated years with several seeds, each in a fresh process with one numba
thread (Mesa 3.3.1 leaks models; results do not depend on the thread count),
and prints, beside each target:

- trabecular BV/TV drift, %/year (least-squares slope over the two years after
  the spin-up, relative to the value at its start; target |drift| < 1 %/yr);
- cell counts (bounded, none extinct);
- resorption, reversal and formation periods of finished BMUs (Eriksen 1986:
  30-45, 8-9 and 65-150 days);
- activation frequency, BMUs per mm^3 per year (0.5-1.6);
- vBMD drift, %/yr (no published target for a healthy steady state: it should be
  small, well below the 1 %/yr of late postmenopausal loss), and the balance of
  finished BMUs (formed / resorbed volume; configured refill fraction 0.97).

The spin-up (default 180 days) lets the synthetic block, which starts without
any remodelling space, open its first cavities. The last line is one JSON object.

Usage: python scripts/homeostasis.py [--seeds 5] [--years 2] [--spinup-days 180] [--workers 2] [--size 100]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from abm.batch.execute import fresh_process_pool  # pool workers end with the script

CONFIG = Path(__file__).resolve().parents[1] / "configs" / "baseline.toml"


def run_one(seed: int, days: float, size: int) -> dict:
    """One replicate in this (fresh) process; returns its series and BMU periods."""
    import numba

    from abm.config import load_scenario
    from abm.model import BoneModel

    numba.set_num_threads(1)
    scenario = load_scenario(CONFIG, [f"geometry.shape_voxels=[{size}, {size}, {size}]"])
    model = BoneModel(scenario, seed=seed)
    start = time.perf_counter()
    for _ in range(int(round(days * 24 / model.dt_h))):
        model.step()
    frame = model.datacollector.get_model_vars_dataframe()
    periods = model.bmus.periods(model.time_days)
    done = ~np.isnan(model.bmus["form_last"]) & (model.bmus["form_last"] <= model.time_days - 30)
    balance = model.bmus.formed_voxels[done] / np.maximum(model.bmus.resorbed_voxels[done], 1)
    return {
        "balance": balance.tolist(),
        "seed": seed,
        "days": np.asarray(model.collected_days),
        "series": {name: frame[name].to_numpy(float) for name in frame.columns},
        "periods": {k: v.tolist() for k, v in periods.items()},
        "volume_mm3": model.state.label.size * model.voxel_um3 * 1e-9,
        "wall_s": time.perf_counter() - start,
    }


def drift_percent_per_year(days: np.ndarray, values: np.ndarray, spinup: float) -> float:
    after = days >= spinup
    slope = np.polyfit(days[after] / 365.25, values[after], 1)[0]
    return float(100.0 * slope / values[after][0])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--years", type=float, default=2.0)
    parser.add_argument("--spinup-days", type=float, default=180.0)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--size", type=int, default=100, help="block edge, voxels")
    args = parser.parse_args()
    days = args.spinup_days + 365.25 * args.years
    with fresh_process_pool(args.workers) as pool:
        runs = list(pool.map(run_one, range(args.seeds), [days] * args.seeds, [args.size] * args.seeds))

    drifts = [drift_percent_per_year(r["days"], r["series"]["bv_tv"], args.spinup_days) for r in runs]
    bmd_drifts = [drift_percent_per_year(r["days"], r["series"]["vbmd_mg_cm3"], args.spinup_days) for r in runs]
    balance = np.concatenate([r["balance"] for r in runs])
    periods = {k: np.concatenate([r["periods"][k] for r in runs]) for k in runs[0]["periods"]}
    years = days / 365.25
    activation = [r["series"]["bmu_activations"][-1] / r["volume_mm3"] / years for r in runs]
    counts = {
        name: (min(r["series"][name].min() for r in runs), max(r["series"][name].max() for r in runs))
        for name in ("n_osteoclast", "n_osteoblast", "n_bmsc", "n_adipocyte")
    }
    mean = {k: float(np.mean(v)) if len(v) else float("nan") for k, v in periods.items()}
    targets = {
        "bv_tv_drift_below_1pct_per_year": bool(abs(np.mean(drifts)) < 1.0),
        "resorption_30_45_days": bool(30 <= mean["resorption_days"] <= 45),
        "formation_65_150_days": bool(65 <= mean["formation_days"] <= 150),
        "reversal_about_8_9_days": bool(7 <= mean["reversal_days"] <= 11),
        "activation_0.5_1.6_per_mm3_year": bool(0.5 <= np.mean(activation) <= 1.6),
        "cells_not_extinct": bool(counts["n_bmsc"][0] > 0 and counts["n_osteoblast"][1] > 0 and counts["n_osteoclast"][1] > 0),
    }
    print(f"baseline, {args.size}^3 voxels, {args.seeds} seeds, {args.spinup_days:g} d spin-up + {args.years:g} years")
    print(f"{'figure':<34} {'value':>22}   target")
    print(f"{'BV/TV drift, %/yr':<34} {np.mean(drifts):>+10.2f} (per seed {', '.join(f'{d:+.2f}' for d in drifts)})   |drift| < 1")
    for key, target in (("resorption_days", "30-45"), ("reversal_days", "8-9"), ("formation_days", "65-150")):
        values = periods[key]
        print(f"{key.replace('_', ' '):<34} {mean[key]:>10.1f} +- {np.std(values):.1f} (n={len(values)})   {target}")
    print(f"{'activation, BMU/mm^3/yr':<34} {np.mean(activation):>10.2f}   0.5-1.6")
    print(f"{'vBMD drift, %/yr':<34} {np.mean(bmd_drifts):>+10.2f} (per seed {', '.join(f'{d:+.2f}' for d in bmd_drifts)})   small")
    print(f"{'BMU balance, formed/resorbed':<34} {np.mean(balance) if len(balance) else float('nan'):>10.3f} (n={len(balance)})   0.97 configured")
    for name, (low, high) in counts.items():
        print(f"{name:<34} {low:>10.0f} .. {high:.0f}   bounded, > 0")
    print(f"wall time per replicate: {np.mean([r['wall_s'] for r in runs]):.0f} s")
    print(json.dumps({
        "bv_tv_drift_pct_per_year": float(np.mean(drifts)),
        "drift_per_seed": drifts,
        "vbmd_drift_pct_per_year": float(np.mean(bmd_drifts)),
        "bmu_balance": float(np.mean(balance)) if len(balance) else None,
        "periods_mean_days": mean,
        "finished_bmus": int(len(periods["resorption_days"])),
        "activation_per_mm3_year": float(np.mean(activation)),
        "cell_count_ranges": counts,
        "targets_met": targets,
    }))


if __name__ == "__main__":
    main()

"""Follow BMUs opened by hand on a spun-up block: their cavity, osteoblast team and refill, day by day.

A block opens only a few BMUs in a run (a T2DM block about one cortical BMU in 4 years), so whether a
mechanism changes how far a BMU refills is hard to read from the calibration's BMU log: the BMUs differ from
run to run. This script opens the same BMUs in every run instead. It takes an arm's spin-up (from the
calibration cache of ``scripts/calibrate_disease.py``, or simulated and saved there), applies the ``--set``
overrides from day 0 (the spin-up is that of the arm without them, so two runs that differ only in ``--set``
start from the same block), opens ``--cortical`` and ``--trabecular`` BMUs at surface sites away from any
open cavity (the same sites for every ``--set``), steps the model and prints, every ``--every`` days and per
BMU: cavity voxels, free cavity voxels on the matrix (the places an osteoblast can take), the osteoblast team
(pre-osteoblasts and active osteoblasts), how many of the team stand in the cortical compartment (where
``cortical_apposition_loss`` slows them, whatever the BMU's site), the pre-osteoblasts recruited so far, and the
voxels resorbed and formed; then each BMU's refill (formed / resorbed), formation period, closing day and the
share of its team in the cortical compartment (summed over the printed days).

    python scripts/trace_bmu_teams.py --arm t2dm --seed 0
    python scripts/trace_bmu_teams.py --arm t2dm --seed 0 --set signalling.microvascular.cortical_apposition_loss=0.5

The BMUs opened here are in addition to those the hazard opens; the block's own remodelling goes on around
them.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
from scipy import ndimage

sys.path.insert(0, str(Path(__file__).resolve().parent))
import calibrate_disease as calib  # noqa: E402  (the spin-up cache and the arms' scenarios)

ROOT = Path(__file__).resolve().parents[1]


def pick_sites(model, cortical: int, trabecular: int, rng: np.random.Generator, clearance: int = 8,
               spacing: int = 15, margin: int = 2) -> list[tuple[np.ndarray, bool]]:
    """Marrow voxels beside bone, ``clearance`` voxels from any open cavity and ``margin`` from the block's
    faces, at least ``spacing`` apart (Chebyshev): ``cortical`` of them in the cortical compartment, then
    ``trabecular`` outside it, each in random order of ``rng``. Fewer where the block has no more."""
    from abm.cells import kernels as K
    from abm.geometry import Tissue

    label = model.state.label
    face = ndimage.generate_binary_structure(3, 1)
    beside_bone = ndimage.binary_dilation(label == Tissue.BONE, face) & (label == Tissue.MARROW)
    clear = ~ndimage.binary_dilation(model.cavity != K.NO_CAVITY, iterations=clearance)
    inner = np.zeros(label.shape, bool)
    inner[tuple(slice(margin, n - margin) for n in label.shape)] = True
    chosen: list[tuple[np.ndarray, bool]] = []
    for is_cortical, count in ((True, cortical), (False, trabecular)):
        candidates = np.argwhere(beside_bone & clear & inner & (model.state.cortical_mask == is_cortical))
        taken = 0
        for c in candidates[rng.permutation(len(candidates))]:
            if taken == count:
                break
            if all(np.abs(c - site).max() >= spacing for site, _ in chosen):
                chosen.append((c.astype(np.int32), is_cortical))
                taken += 1
    return chosen


def trace(arm: str, seed: int, size: int, days: float, cortical: int, trabecular: int, every: float,
          overrides: tuple[str, ...] = (), cache: str = "", site_seed: int = 0) -> dict:
    """Open the BMUs on the arm's spun-up block and follow them for ``days``; returns the record."""
    import numba

    from abm.cells.agents import OsteoblastStage as OB
    from abm.geometry import Tissue
    from abm.model import BoneModel

    numba.set_num_threads(1)
    scenario = calib._scenario(arm, size, overrides, seed)  # bad overrides fail here, before the spin-up
    model = calib.spun_up_model(arm, seed, size, (), cache)
    if overrides:
        model = BoneModel.from_checkpoint(scenario, *model.checkpoint())
    sites = pick_sites(model, cortical, trabecular, np.random.default_rng(site_seed))
    ids = np.array([model.open_bmu(site) for site, _ in sites], np.int64)
    ob = model.stores["osteoblast"]
    newest = int(ob["uid"].max()) if len(ob) else -1
    recruited = np.zeros(len(ids), np.int64)
    rows = []
    steps_per_day = 24.0 / model.dt_h
    report_every = max(1, int(round(every * steps_per_day)))
    face = ndimage.generate_binary_structure(3, 1)
    for step in range(int(round(days * steps_per_day)) + 1):
        if step:
            model.step()
        ob = model.stores["osteoblast"]
        born = ob["uid"] > newest  # new pre-osteoblasts since the last step: the recruits
        if born.any():
            recruited += np.array([np.count_nonzero(born & (ob["bmu"] == b)) for b in ids])
            newest = int(ob["uid"].max())
        if step % report_every:
            continue
        label = model.state.label
        on_matrix = ndimage.binary_dilation((label == Tissue.BONE) | (label == Tissue.OSTEOID), face)
        working = ob["stage"] != OB.LINING
        pos = ob["pos"]
        in_cortex = model.state.cortical_mask[pos[:, 0], pos[:, 1], pos[:, 2]]
        for i, b in enumerate(ids):
            cavity = model.cavity == b
            team = working & (ob["bmu"] == b)
            rows.append({
                "day": round(model.time_days, 3), "bmu": int(b),
                "cavity": int(cavity.sum()),
                "places": int(np.count_nonzero(cavity & (label == Tissue.MARROW) & on_matrix & (model.ob_occupied == 0))),
                "team": int(np.count_nonzero(team)), "team_in_cortex": int(np.count_nonzero(team & in_cortex)),
                "recruited": int(recruited[i]),
                "resorbed": int(model.bmus.resorbed_voxels[b]), "formed": int(model.bmus.formed_voxels[b]),
            })
    bmus = []
    for i, (b, (site, is_cortical)) in enumerate(zip(ids, sites)):
        resorbed = int(model.bmus.resorbed_voxels[b])
        team_days = sum(r["team"] for r in rows if r["bmu"] == b)
        bmus.append({
            "bmu": int(b), "site": site.tolist(), "cortical": bool(is_cortical), "recruited": int(recruited[i]),
            "resorbed": resorbed, "formed": int(model.bmus.formed_voxels[b]),
            "refill": float(model.bmus.formed_voxels[b] / resorbed) if resorbed else float("nan"),
            "formation_days": float(model.bmus["form_last"][b] - model.bmus["form_first"][b]),
            "closed_day": float(model.bmus["closed"][b]),
            "team_in_cortex_share": (sum(r["team_in_cortex"] for r in rows if r["bmu"] == b) / team_days
                                     if team_days else float("nan")),
        })
    return {"arm": arm, "seed": seed, "overrides": list(overrides), "days": days, "bmus": bmus, "rows": rows}


def _print(record: dict) -> None:
    print(f"{record['arm']} seed {record['seed']}, {record['days']:g} days"
          + (f", --set {' '.join(record['overrides'])}" if record["overrides"] else ""))
    print(f"{'day':>6} {'bmu':>4} {'cavity':>7} {'places':>7} {'team':>5} {'in cortex':>9} {'recruited':>9} {'resorbed':>8}"
          f" {'formed':>7}")
    for r in record["rows"]:
        print(f"{r['day']:6.0f} {r['bmu']:4d} {r['cavity']:7d} {r['places']:7d} {r['team']:5d} {r['team_in_cortex']:9d}"
              f" {r['recruited']:9d}"
              f" {r['resorbed']:8d} {r['formed']:7d}")
    print(f"{'bmu':>4} {'compartment':<11} {'site':<14} {'recruited':>9} {'resorbed':>8} {'formed':>7} {'refill':>6}"
          f" {'formation d':>11} {'closed day':>10} {'in cortex':>9}")
    for b in record["bmus"]:
        print(f"{b['bmu']:4d} {'cortical' if b['cortical'] else 'trabecular':<11} {str(b['site']):<14} {b['recruited']:9d}"
              f" {b['resorbed']:8d} {b['formed']:7d} {b['refill']:6.3f} {b['formation_days']:11.0f} {b['closed_day']:10.0f}"
              f" {b['team_in_cortex_share']:9.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--arm", default="t2dm", help="a scenario in configs/ (default t2dm)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--size", type=int, default=60, help="block edge, voxels")
    parser.add_argument("--days", type=float, default=320.0, help="days to follow the BMUs (formation takes about 220)")
    parser.add_argument("--cortical", type=int, default=2, help="cortical BMUs to open")
    parser.add_argument("--trabecular", type=int, default=3, help="trabecular BMUs to open")
    parser.add_argument("--every", type=float, default=20.0, help="days between printed rows")
    parser.add_argument("--site-seed", type=int, default=0, help="seed of the site choice (not of the run)")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="config override from day 0 (repeatable); the spin-up is the arm's without it")
    parser.add_argument("--cache", default=str(ROOT / "runs" / "calibration"),
                        help="spin-up cache shared with calibrate_disease.py ('' for none)")
    parser.add_argument("--json", metavar="PATH", help="also write the record as JSON")
    args = parser.parse_args()
    from abm.errors import UserError

    for name in ("cortical", "trabecular"):
        if getattr(args, name) < 0:
            parser.error(f"--{name}: {getattr(args, name)} is negative; give a count >= 0")
    if args.days <= 0 or args.every <= 0:
        parser.error(f"--days {args.days:g} and --every {args.every:g} must both be > 0")
    if not (ROOT / "configs" / f"{args.arm}.toml").exists():
        parser.error(f"--arm: no configs/{args.arm}.toml; give a scenario name such as t2dm or premenopausal")
    try:
        record = trace(args.arm, args.seed, args.size, args.days, args.cortical, args.trabecular, args.every,
                       tuple(args.set), args.cache, args.site_seed)
    except UserError as err:
        sys.exit(f"error: {err}")
    _print(record)
    if args.json:
        path = Path(args.json)
        partial = path.with_name(path.name + ".partial")
        partial.write_text(json.dumps(record, indent=1))
        partial.replace(path)


if __name__ == "__main__":
    main()

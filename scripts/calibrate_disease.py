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
  ferroptotic osteoblast deaths; and, since both arms start from the same block, the prospective
  aBMD figure: diabetic women lose 0.25-0.7 %/yr faster (SOF, Schwartz 2013), printed for
  t2dm - premenopausal over the run and, with ``pm_t2dm``, for pm_t2dm - postmenopausal after year 2
  (SOF's women were long postmenopausal);
- treatments in postmenopausal T2DM: the direction of each on aBMD against untreated PM-T2DM
  (vitamin D against untreated PM-T2DM with low vitamin D, ``pm_t2dm_low_vitamin_d``: a supplement
  acts only below sufficiency, :data:`TREATMENT_CONTROLS`), beside what trials (or, for the
  ferroptosis drugs, rodent studies) report, with the ferroptotic osteoblast deaths it spares and
  its cortical porosity (deferoxamine lowers ferroptotic deaths, anti-TNF lowers the loss,
  alendronate raises BMD, ...).

The default is a 60^3 block (1.2 mm) for 4 years with 3 seeds per arm, each arm starting from
its scenario's spin-up (``time.spinup_days``, 2 years in configs/premenopausal.toml: remodelling before
day 0 under the inputs of day 0). Arms whose scenarios differ only after day 0 share a seed's spin-up
(premenopausal and postmenopausal; pm_t2dm and its treatments; pm_t2dm_low_vitamin_d and
pm_t2dm_vitamin_d): it is simulated once, saved in the
cache and branched from (:func:`spinup_key`), bit for bit the run that spun up itself. About 10 min per
simulated 4 years on one core, so the three base arms take about 1.5 h on 2 cores and all 16 arms
about 5 h. ``--years 1 --seeds 1`` is a quick look. Arms are paired by seed (every run starts from the
same synthetic block and the seed sets the cells' random stream).

A 60^3 block sees only 1-5 BMUs a year and each open cavity is several percent of its
trabecular bone, so the direct figures (the replicate mean of each series, with its
standard error over seeds) carry the Poisson noise of the BMU count: tens of percent.
The figures that BMUs make (BMD, cortical porosity, resorbed and formed volume) are
therefore also given by a BMU-renewal estimator (see the comment above
:func:`fit_bmu_profiles`): it fits the mean effect of a BMU as a function of its age to
all replicates of an arm and integrates it against the model's own activation hazard
(the ``expected_bmu_activations`` series), which estimates the same mean without the count
noise; its standard error is a jackknife over seeds. Each target is judged on whichever of
the two estimates has the smaller standard error. Below the figures, each arm's BMUs pooled over
seeds, per compartment (:func:`bmu_balance`: opened per year, size, closed short, refill, formation
period): a BMU's refill deficit is the pore it leaves. The last line is one JSON object with the
figures, their standard errors, the renewal figures and theirs, ``judged_on`` (which estimate
each target was judged on), ``renewal_profiles`` ("per compartment" or "pooled", :func:`bmu_compartments`),
``targets_met`` and ``bmu_balance``.

Every finished replicate (and spin-up) is saved in ``--cache`` (default ``runs/calibration``) under a
key made of the arm, seed, length, resolved scenario and the simulator's source, so an
interrupted calibration resumes where it stopped and a rerun with more arms or seeds
simulates only what is new. ``--cache ''`` turns the cache off. ``--set ARM:KEY=VALUE`` overrides one
arm only (``--set KEY=VALUE``: every arm), so a trial of a lever on one arm reuses the other arms'
cached replicates instead of simulating them again, e.g. ``--arms premenopausal t2dm --seeds 10 --set
t2dm:signalling.microvascular.cortical_apposition_loss=0.8``.

For many replicates (a cluster), run ``scripts/calibration_batch.toml`` with ``abm batch``
(local pool or ``--cluster``, resumable) and read its figures with ``--from-batch
batches/disease_calibration``: replicates stand in for seeds. Run files keep no BMU log, so the
renewal estimator then cannot see the BMUs in progress at day 0 (their refill goes into the shared drift).

Usage: python scripts/calibrate_disease.py [--arms premenopausal postmenopausal ...] [--years 4]
       [--seeds 3] [--size 60] [--workers 2] [--set [ARM:]KEY=VALUE ...] [--cache DIR]
       python scripts/calibrate_disease.py --from-batch batches/disease_calibration
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

from abm.batch.execute import fresh_process_pool  # a fresh process per task; workers end with the script
from abm.config.treatments import TREATMENTS  # the treatments a scenario can dose, one pm_t2dm arm each

ROOT = Path(__file__).resolve().parents[1]
CONFIGS = ROOT / "configs"
BASE_ARMS = ("premenopausal", "postmenopausal", "t2dm", "pm_t2dm")
# The untreated arm each treatment is judged against, where it is not pm_t2dm: a vitamin D supplement acts only
# below the sufficient 25(OH)D of 75 nM (Reid 2014: no BMD gain in replete adults), so it treats PM-T2DM women
# who are short of it (configs/pm_t2dm_low_vitamin_d.toml, 50 nM: Mori 2015)
TREATMENT_CONTROLS = {"vitamin_d": "pm_t2dm_low_vitamin_d"}
CONTROL_ARMS = tuple(dict.fromkeys(TREATMENT_CONTROLS.values()))
# What is known of each treatment's effect on BMD, printed beside its figure (the target is the direction,
# > 0: the block is 1.2 mm of spine-like bone, not a DXA site, so trial sizes are a yardstick, not a target)
TREATMENT_EVIDENCE = {
    "deferoxamine": "rodent T2DM/OVX models only",
    "nac": "rodent T2DM/OVX models only",
    "ferrostatin": "rodent T2DM models only",
    "anti_tnf": "RA: loss halted (Vis 2006)",
    "alendronate": "T2DM women: spine +6.6 %, hip +2.4 % in 3 y (FIT, Keegan 2004)",
    "teriparatide": "spine +9 %, neck +3 % vs placebo, 21 mo (Neer 2001); same in T2DM (DANCE)",
    "raloxifene": "spine +2.6 %, neck +2.1 % vs placebo, 3 y (MORE, Ettinger 1999)",
    "hormone_therapy": "hip +3.7 % vs placebo, 3 y (WHI, Cauley 2003)",
    "metformin": "no BMD trial; fracture-neutral (ADOPT)",
    "glp1": "trials neutral; less loss on weight loss (Iepsen 2015)",
    "vitamin_d": "hip +0.5 % vs placebo in 2 y, spine none; about +2 % if 25(OH)D <= 30 nM (ViDA, Reid 2017)",
}
SERIES = ("abmd_g_cm2", "vbmd_mg_cm3", "trabecular_vbmd_mg_cm3", "bv_tv", "porosity", "cortical_porosity", "marrow_adiposity",
          "resorbed_um3_per_day", "formed_um3_per_day", "deaths_osteoblast_ferroptosis", "matrix_age_products_au",
          "bmu_activations", "expected_bmu_activations", "expected_cortical_bmu_activations",
          "bmu_activations_inhibited_by_glucose", "n_lining", "mean_opg")
# the BMU log kept with each replicate: per BMU, the days it opened, first and last resorbed, first and
# last formed and closed (nan: not yet), voxels resorbed and formed, the voxels it may form (refill fraction
# of the resorbed, at the end of the run) and whether its site is cortical
BMU_DAYS = ("opened", "resorb_first", "resorb_last", "form_first", "form_last", "closed")
BMU_LOG = (*BMU_DAYS, "resorbed_voxels", "formed_voxels", "quota_voxels", "cortical")


def control_arm(treatment: str) -> str:
    """The untreated arm that ``pm_t2dm_{treatment}`` is judged against."""
    return TREATMENT_CONTROLS.get(treatment, "pm_t2dm")


def _arm_prefix(item: str) -> tuple[str | None, str]:
    """Split a ``--set`` item into its arm (None without an ``ARM:`` prefix before the key) and KEY=VALUE."""
    if ":" in item.split("=", 1)[0]:
        arm, rest = item.split(":", 1)
        return arm, rest
    return None, item


def arm_overrides(arm: str, overrides: tuple[str, ...]) -> tuple[str, ...]:
    """The ``--set`` overrides that apply to ``arm``: KEY=VALUE to every arm, ARM:KEY=VALUE to ARM alone
    (without its prefix). The other arms' scenarios, and so their cache keys, are then untouched."""
    return tuple(rest for target, rest in map(_arm_prefix, overrides) if target in (None, arm))


def check_arm_overrides(arms: list[str], overrides: list[str]) -> None:
    """Raise a one-line error for an ARM:KEY=VALUE override whose arm is not among ``arms`` (a typo would
    otherwise leave the trial arm unchanged and its figures the untreated ones)."""
    from abm.errors import UserError

    for item in overrides:
        target = _arm_prefix(item)[0]
        if target is not None and target not in arms:
            raise UserError(f"--set {item!r}: arm {target!r} is not among --arms ({', '.join(arms)})")


def _scenario(arm: str, size: int, overrides: tuple[str, ...], seed: int | None = None):
    from abm.config import load_scenario

    overrides = arm_overrides(arm, overrides)
    extra = [] if seed is None else [f"seed={seed}"]
    return load_scenario(CONFIGS / f"{arm}.toml", [f"geometry.shape_voxels=[{size}, {size}, {size}]", *overrides, *extra])


def _source_digest(digest) -> None:
    import abm

    for path in sorted(Path(abm.__file__).parent.rglob("*.py")):
        digest.update(path.read_bytes())


def spinup_key(arm: str, seed: int, size: int, overrides: tuple[str, ...] = ()) -> str | None:
    """Cache key of a replicate's spin-up (``time.spinup_days`` before day 0), or None without one.

    The spin-up sees every schedule at its value before day 0, so arms whose scenarios differ only in their
    schedules after day 0 (premenopausal and postmenopausal; pm_t2dm and its treatments) have the same
    spin-up, bit for bit: the key is the scenario without its name, description, length and schedules,
    plus the inputs and doses before day 0, the seed and the simulator's source."""
    scenario = _scenario(arm, size, overrides, seed)
    before = -scenario.time.spinup_days
    if not before:
        return None
    data = scenario.model_dump(mode="json")
    for name in ("name", "description", "systemic", "treatments"):
        data.pop(name, None)
    data["time"].pop("days", None)
    data["before_day_0"] = [scenario.systemic.at(before), scenario.treatments.at(before)]
    digest = hashlib.sha256(f"spinup|{seed}|{json.dumps(data, sort_keys=True)}|".encode())
    _source_digest(digest)
    return f"spinup_s{seed}_{digest.hexdigest()[:16]}"


def spun_up_model(arm: str, seed: int, size: int, overrides: tuple[str, ...] = (), cache: str = ""):
    """A model of the arm at day 0: its spin-up read from ``cache`` (any arm with the same :func:`spinup_key`
    may have written it) or simulated (and then saved there)."""
    from abm.io.checkpoint import read_checkpoint, write_checkpoint
    from abm.model import BoneModel

    scenario = _scenario(arm, size, overrides, seed)
    key = spinup_key(arm, seed, size, overrides) if cache else None
    path = Path(cache) / f"{key}.h5" if key else None
    if path is not None and path.exists():
        return BoneModel.from_checkpoint(scenario, *read_checkpoint(path))
    model = BoneModel(scenario)
    while model.steps < model.spinup_steps:
        model.step()
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        write_checkpoint(path, *model.checkpoint())  # atomic: a killed spin-up leaves no file
    return model


def spin_up_cached(arm: str, seed: int, size: int, overrides: tuple[str, ...] = (), cache: str = "") -> None:
    """Simulate and save one replicate's spin-up unless it is in ``cache`` (a fresh process per call)."""
    import numba

    numba.set_num_threads(1)
    spun_up_model(arm, seed, size, overrides, cache)


def replicate_key(arm: str, seed: int, days: float, size: int, overrides: tuple[str, ...] = ()) -> str:
    """Cache key of one replicate: arm, seed, length, the saved series, the resolved scenario and the
    simulator's source."""
    from abm.config.loader import to_toml

    digest = hashlib.sha256(f"{arm}|{seed}|{days!r}|{','.join(SERIES)}|".encode())
    digest.update(to_toml(_scenario(arm, size, overrides, seed)).encode())
    _source_digest(digest)
    return f"{arm}_s{seed}_{digest.hexdigest()[:16]}"


def run_cached(arm: str, seed: int, days: float, size: int, overrides: tuple[str, ...] = (), cache: str = "") -> dict:
    """:func:`run_one`, or its saved result from ``cache`` (a directory; empty: no cache)."""
    if not cache:
        return run_one(arm, seed, days, size, overrides)
    path = Path(cache) / f"{replicate_key(arm, seed, days, size, overrides)}.npz"
    if path.exists():
        with np.load(path) as saved:
            bmus = None
            if "bmus/opened" in saved:  # columns added since the replicate was saved are nan
                n = len(saved["bmus/opened"])
                bmus = {name: saved[f"bmus/{name}"] if f"bmus/{name}" in saved else np.full(n, np.nan)
                        for name in BMU_LOG}
            return {"arm": arm, "seed": seed, "days": saved["days"], "wall_s": float(saved["wall_s"]), "cached": True,
                    "series": {name: saved[f"series/{name}"] for name in SERIES}, "bmus": bmus}
    result = run_one(arm, seed, days, size, overrides, cache)
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".partial")
    with open(partial, "wb") as f:  # written whole, then renamed: a killed run leaves no half file
        np.savez(f, days=result["days"], wall_s=result["wall_s"],
                 **{f"series/{name}": values for name, values in result["series"].items()},
                 **{f"bmus/{name}": values for name, values in (result.get("bmus") or {}).items()})
    os.replace(partial, path)
    return result


def run_one(arm: str, seed: int, days: float, size: int, overrides: tuple[str, ...] = (), cache: str = "") -> dict:
    """One replicate of one arm in this (fresh) process, from its spin-up (shared through ``cache``) to ``days``."""
    import numba

    numba.set_num_threads(1)
    start = time.perf_counter()
    model = spun_up_model(arm, seed, size, overrides, cache)
    for _ in range(int(round(days * 24 / model.dt_h))):
        model.step()
    frame = model.datacollector.get_model_vars_dataframe()
    return {
        "arm": arm, "seed": seed, "days": np.asarray(model.collected_days),
        "series": {name: frame[name].to_numpy(float) for name in SERIES},
        "bmus": bmu_log(model), "wall_s": time.perf_counter() - start,
    }


def bmu_log(model) -> dict[str, np.ndarray]:
    """The model's BMU log as the :data:`BMU_LOG` columns (float arrays, one value per BMU)."""
    log = model.bmus
    site = log.site[: log.n]
    return {
        **{name: log[name].copy() for name in BMU_DAYS},
        "resorbed_voxels": log.resorbed_voxels.astype(float), "formed_voxels": log.formed_voxels.astype(float),
        "quota_voxels": np.asarray(model.bmu_quota(), float),
        "cortical": model.state.cortical_mask[tuple(site.T)].astype(float) if log.n else np.zeros(0),
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
                     "series": {name: rows[name].to_numpy(float) if name in rows else np.full(len(rows), np.nan)
                                for name in SERIES}, "wall_s": float("nan"),
                     "cached": True})
    return runs


def bmu_balance(arm_runs: list[dict], cortical: bool, settle_days: float = 30.0) -> dict[str, float] | None:
    """Per-BMU figures of one arm's BMUs in one compartment, pooled over its replicates (None if a replicate
    has no BMU log, e.g. one read from a batch folder).

    ``opened_per_year``: BMUs opened per replicate-year; ``resorbed_voxels`` (+- ``resorbed_se``): mean
    voxels resorbed by BMUs whose last resorption was at least ``settle_days`` before the end; of the BMUs
    whose remodelling space closed: ``closed``, ``short`` (formed less than the refill quota: their osteoblast
    team died or never came), ``refill`` (+- ``refill_se``), the mean of formed / resorbed, and
    ``formation_days`` (+- ``formation_se``), from first to last formation (nan if not logged). A BMU's
    refill deficit is the pore it leaves: the mechanism of cortical porosity in the long run, which a
    few-year block only samples.
    """
    if not arm_runs or any(r.get("bmus") is None for r in arm_runs):
        return None
    here = [(np.asarray(r["bmus"]["cortical"]) > 0) == cortical for r in arm_runs]  # this compartment's BMUs

    def pooled(name: str) -> np.ndarray:
        return np.concatenate([np.asarray(r["bmus"][name], float)[m] for r, m in zip(arm_runs, here)])
    end = np.concatenate([np.full(int(m.sum()), r["days"][-1]) for r, m in zip(arm_runs, here)])
    resorbed, formed, quota = pooled("resorbed_voxels"), pooled("formed_voxels"), pooled("quota_voxels")
    resorbing_done = (pooled("resorb_last") <= end - settle_days) & (resorbed > 0)
    closed = np.isfinite(pooled("closed")) & (resorbed > 0)
    refill = formed[closed] / resorbed[closed]
    formation = (pooled("form_last") - pooled("form_first"))[closed]
    years = sum(float(r["days"][-1]) for r in arm_runs) / 365.25
    return {
        "opened_per_year": len(resorbed) / years if years else float("nan"),
        **dict(zip(("resorbed_voxels", "resorbed_se"), mean_se(list(resorbed[resorbing_done])))),
        "closed": float(np.count_nonzero(closed)),
        "short": float(np.count_nonzero(formed[closed] < quota[closed])),
        **dict(zip(("refill", "refill_se"), mean_se(list(refill)))),
        **dict(zip(("formation_days", "formation_se"), mean_se(list(formation[np.isfinite(formation)])))),
    }


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


# ---------------------------------------------------------------- BMU-renewal estimator
# A block of a few mm^3 sees a handful of BMUs a year, and each open cavity is several percent of its
# trabecular bone, so a replicate's BMD path is mostly the count and timing of its BMUs (Poisson noise).
# The series that BMUs drive are sums over BMUs of a profile of BMU age (Campbell's theorem):
#     y(t) - y(0) = d(t) + sum_i m(t - s_i) + noise,
# with s_i the BMUs' activation days, m(tau) the mean effect of a BMU of age tau (a cavity that opens
# and refills) and d(t) a smooth drift of everything else. Every osteoclast and osteoblast belongs to a
# BMU, so d is the secondary mineralisation of the starting block's matrix: deterministic and the same in
# every arm that starts from the same block (estrogen, glucose and the treatments act on cells; vitamin D
# only on the lag of new osteoid, which BMUs lay), so compared arms are fitted together with one d. The
# expected path replaces the realised activations by the model's own activation hazard (the
# ``expected_bmu_activations`` series, the compensator of the Poisson draws):
#     E[y(t) - y(0)] = d(t) + integral m(t - s) dLambda(s),
# which estimates the same mean as the replicate average without the count noise. m (one per arm) and d
# are fitted by least squares over all replicates of the compared arms (m piecewise linear in BMU age,
# smooth, constant after PROFILE_KNOTS[-1] days: a finished BMU keeps its balance; d quadratic).
# A run that starts from a spin-up has BMUs in progress at day 0 (opened at s_i < 0, from its BMU log):
# they enter as m(t - s_i) - m(-s_i), what they still do after day 0, in the fit and, as realised (they are
# the state the run starts from, shared by the arms that share the spin-up), in the expected path.
# Cortical and trabecular BMUs do different things (a cortical one changes cortical porosity, a trabecular
# one trabecular BMD), and the few BMUs of a block split between them far from the hazard's proportions by
# chance, so when the runs carry the cortical share of the hazard each arm has two profiles, m_c and m_t,
# fitted to the BMUs of each compartment (their sites, from the BMU log) and integrated against the
# compartment's own share of the hazard (:func:`bmu_compartments`).
# Standard errors: jackknife over seeds.
PROFILE_KNOTS = np.r_[np.arange(0.0, 360.0, 15.0), np.arange(360.0, 541.0, 60.0)]
PROFILE_SMOOTHING = 1.0  # weight of the second-difference penalty on m (units of the series squared)
FIT_EVERY_DAYS = 3.0


def activation_days(run: dict, cortical: bool | None = None) -> np.ndarray:
    """Day of every realised BMU activation (one entry per BMU): from the BMU log when the run has one
    (exact, and with the BMUs opened in the spin-up, before day 0), else from the cumulative count series.
    ``cortical`` True or False: only the BMUs of that compartment (by their site; needs the log)."""
    if cortical is not None:
        opened = np.asarray(run["bmus"]["opened"], float)
        return np.sort(opened[(np.asarray(run["bmus"]["cortical"], float) > 0) == cortical])
    if run.get("bmus") is not None and np.isfinite(run["bmus"]["opened"]).all():
        return np.sort(np.asarray(run["bmus"]["opened"], float))
    count = np.nan_to_num(run["series"]["bmu_activations"])
    new = np.diff(count, prepend=0.0).round().astype(np.int64)
    return np.repeat(run["days"], np.maximum(new, 0))


def bmu_compartments(runs: list[dict]) -> tuple[bool | None, ...]:
    """The BMU classes the renewal estimator fits a profile for: ``(False, True)``, trabecular and cortical
    BMUs apart, when every run has the cortical share of the hazard (``expected_cortical_bmu_activations``)
    and a BMU log with each BMU's compartment; else ``(None,)``, one profile for all BMUs.

    A cortical BMU changes cortical porosity and a trabecular one trabecular BMD; one profile per arm is
    their mean weighted by the realised mix, and a block opens so few BMUs that the mix is far from the
    hazard's by chance (10 seeds of 2026-11-22: 16 of 44 healthy BMUs cortical where the hazard expected
    about 10), which then biases every BMU the hazard expects. A profile per compartment, each integrated
    against its own share of the hazard, removes that."""
    def split(run: dict) -> bool:
        share = run["series"].get("expected_cortical_bmu_activations")
        log = run.get("bmus")
        return (share is not None and bool(np.isfinite(share[-1])) and log is not None
                and bool(np.isfinite(np.asarray(log["opened"], float)).all())
                and bool(np.isfinite(np.asarray(log["cortical"], float)).all()))
    return (False, True) if runs and all(map(split, runs)) else (None,)


def _profile_basis(age: np.ndarray) -> np.ndarray:
    """Piecewise-linear basis of m at BMU ``age`` (days): 0 before activation, m(0) = 0, constant after the last knot."""
    age = np.asarray(age, float)
    basis = np.zeros(age.shape + (len(PROFILE_KNOTS) - 1,))
    for k in range(1, len(PROFILE_KNOTS)):
        unit = np.zeros(len(PROFILE_KNOTS))
        unit[k] = 1.0
        basis[..., k - 1] = np.where(age < 0, 0.0, np.interp(age, PROFILE_KNOTS, unit))
    return basis


def _drift_basis(days: np.ndarray) -> np.ndarray:
    years = np.asarray(days, float) / 365.25
    return np.stack([years, years**2], axis=-1)


def fit_bmu_profiles(arms: list[list[dict]], change) -> tuple[list[list[np.ndarray]], np.ndarray]:
    """Least-squares BMU profile coefficients of each arm (a list of its runs), one per BMU compartment of
    :func:`bmu_compartments`, and the drift coefficients the arms share, of ``change(run)`` (y(t) - y(0)
    per sample)."""
    classes = bmu_compartments([run for runs in arms for run in runs])
    n_m = len(PROFILE_KNOTS) - 1
    n_p = len(arms) * len(classes)  # profiles
    n_d = _drift_basis(np.zeros(1)).shape[1]
    rows, values = [], []
    for a, runs in enumerate(arms):
        for run in runs:
            days = run["days"]
            keep = np.r_[0, np.flatnonzero(np.diff(np.floor(days / FIT_EVERY_DAYS)) > 0) + 1]
            t = days[keep]
            y = np.asarray(change(run), float)[keep]
            ok = np.isfinite(y)
            block = np.zeros((len(t), n_m * n_p + n_d))
            for c, cortical in enumerate(classes):
                opened = activation_days(run, cortical)[None, :]  # what each BMU does after day 0
                p = a * len(classes) + c
                block[:, p * n_m:(p + 1) * n_m] = (_profile_basis(t[:, None] - opened)
                                                   - _profile_basis(-opened)).sum(axis=1)
            block[:, n_m * n_p:] = _drift_basis(t)
            rows.append(block[ok])
            values.append(y[ok])
    design = np.vstack(rows)
    penalty = np.zeros(((n_m - 2) * n_p, design.shape[1]))
    for p in range(n_p):
        for i in range(n_m - 2):
            penalty[p * (n_m - 2) + i, p * n_m + i:p * n_m + i + 3] = (1.0, -2.0, 1.0)
    coef = np.linalg.lstsq(np.vstack([design, np.sqrt(PROFILE_SMOOTHING) * penalty]),
                           np.concatenate([*values, np.zeros(len(penalty))]), rcond=None)[0]
    profiles = [coef[p * n_m:(p + 1) * n_m] for p in range(n_p)]
    return [profiles[a * len(classes):(a + 1) * len(classes)] for a in range(len(arms))], coef[n_m * n_p:]


def keep_probability(scenario, days: np.ndarray) -> np.ndarray:
    """Probability that high glucose lets a drawn BMU activation go ahead (``HyperglycaemiaModule``), at the
    scenario's plasma glucose on ``days``: the model's own thinning of its activation hazard.

    The model evaluates it at the site's local glucose, which at the bone surface of the 60^3 T2DM blocks is
    within 0.01-0.4 mM of plasma (mean 8.99 at 9 mM: keep 0.5231 against 0.5227 at plasma; checked on the
    spin-ups of 2026-11-22)."""
    from abm.config.systemic import NORMAL_GLUCOSE_MM

    excess = np.maximum(np.array([scenario.systemic.glucose_at(float(d)) for d in days]) - NORMAL_GLUCOSE_MM, 0.0)
    return 1.0 - scenario.signalling.hyperglycaemia.inhibited_fraction(excess)


def hazard_increments(runs: list[dict], cortical: bool | None = None) -> np.ndarray:
    """Mean over the runs of the expected BMU activations per sample interval (on the first run's days),
    thinned by glucose inhibition: by the model's keep probability when the runs carry it (``keep``, on their
    days, from :func:`keep_probability`), else by the share of drawn activation sites that high glucose did not
    inhibit. The probability is the compensator; the share adds the noise of the keep draws (11 of 29 kept
    where 0.52 was expected in the 5 T2DM seeds of 2026-11-22). ``cortical`` True or False: only that
    compartment's share of the hazard (``expected_cortical_bmu_activations`` and the rest)."""
    days = runs[0]["days"]

    def expected(run: dict) -> np.ndarray:
        total = np.nan_to_num(run["series"]["expected_bmu_activations"])
        if cortical is None:
            return total
        in_cortex = np.nan_to_num(run["series"]["expected_cortical_bmu_activations"])
        return in_cortex if cortical else total - in_cortex
    cumulative = np.mean([np.interp(days, r["days"], expected(r)) for r in runs], axis=0)
    if all(r.get("keep") is not None for r in runs):
        return np.diff(cumulative, prepend=0.0) * np.interp(days, runs[0]["days"], runs[0]["keep"])
    realised = sum(float(np.nan_to_num(r["series"]["bmu_activations"])[-1]) for r in runs)
    inhibited = sum(float(np.nan_to_num(r["series"].get("bmu_activations_inhibited_by_glucose", np.zeros(1)))[-1])
                    for r in runs)
    kept = realised / (realised + inhibited) if realised + inhibited else 1.0
    return np.diff(cumulative, prepend=0.0) * kept


def expected_changes(arms: list[list[dict]], change) -> list[np.ndarray]:
    """Expected ``y(t) - y(0)`` of each arm (a list of its runs) on its first run's days (see the estimator's
    comment above); the arms share the drift, and each BMU compartment of :func:`bmu_compartments` adds its
    profile integrated against its own share of the hazard."""
    classes = bmu_compartments([run for runs in arms for run in runs])
    profiles, drift = fit_bmu_profiles(arms, change)
    paths = []
    for runs, arm_profiles in zip(arms, profiles, strict=True):
        days = runs[0]["days"]
        path = _drift_basis(days) @ drift
        for cortical, m in zip(classes, arm_profiles, strict=True):
            def m_at(age: np.ndarray, m: np.ndarray = m) -> np.ndarray:
                return np.where(age < 0, 0.0, np.interp(age, PROFILE_KNOTS, np.r_[0.0, m]))
            profile = m_at(days[:, None] - days[None, :])  # t - s for every pair of samples
            before = [opened[opened < 0] for opened in (activation_days(r, cortical) for r in runs)]  # in progress
            in_progress = np.mean([(m_at(days[:, None] - s[None, :]) - m_at(-s)[None, :]).sum(axis=1)
                                   for s in before], axis=0)
            path = path + profile @ hazard_increments(runs, cortical) + in_progress
        paths.append(path)
    return paths


def jackknife(runs: list[dict], arms: tuple[str, ...], figure) -> tuple[float, float]:
    """``figure(runs of arms[0], runs of arms[1], ...)`` on every seed they share, with its jackknife
    standard error over seeds (nan with fewer than 3 seeds)."""
    seeds = sorted(set.intersection(*({r["seed"] for r in runs if r["arm"] == arm} for arm in arms)))
    if not seeds:
        return float("nan"), float("nan")

    def value(use: list[int]) -> float:
        return figure(*([r for r in runs if r["arm"] == arm and r["seed"] in use] for arm in arms))

    full = value(seeds)
    if len(seeds) < 3:
        return full, float("nan")
    leave_out = np.array([value([s for s in seeds if s != out]) for out in seeds])
    n = len(seeds)
    return full, float(np.sqrt((n - 1) / n * np.sum((leave_out - leave_out.mean()) ** 2)))


def relative_change(name: str):
    """y(t) / y(0) - 1 of one series, percent."""
    return lambda run: 100.0 * (run["series"][name] / run["series"][name][0] - 1.0)


def absolute_change(name: str):
    """y(t) - y(0) of one series."""
    return lambda run: run["series"][name] - run["series"][name][0]


def cumulative(name: str):
    """Running integral over days of a per-day rate series (each sample is the mean rate since the last)."""
    def total(run: dict) -> np.ndarray:
        rate = np.nan_to_num(run["series"][name])
        return np.cumsum(rate * np.diff(run["days"], prepend=run["days"][0]))
    return total


class FigureTable:
    """The figures of one calibration: each with its direct estimate, its BMU-renewal estimate where there is
    one, and which of the two its target is judged on."""

    def __init__(self, renewal_ok: bool) -> None:
        self.renewal_ok = renewal_ok  # False when a replicate lacks the hazard series (e.g. an old batch)
        self.figures: dict[str, float] = {}
        self.errors: dict[str, float] = {}
        self.renewal_figures: dict[str, float] = {}
        self.renewal_errors: dict[str, float] = {}
        self.judged_on: dict[str, str] = {}
        self.rows: list[tuple] = []  # (label, direct, se, renewal, se, target) in the order added

    def add(self, key: str, label: str, value: tuple[float, float], target: str,
            renewal: tuple[float, float] | None = None) -> float:
        """Record a figure (and its BMU-renewal estimate); return the estimate its target is judged on.

        Both estimate the same mean; the target is judged on the one with the smaller standard error: the
        renewal one for BMD paths and turnover, the direct one where BMUs are too rare for the profile
        fit (the cortex) or the figure is a level the drift dominates. Without a direct error (one seed)
        the renewal estimate is used."""
        self.figures[key], self.errors[key] = value
        if renewal is not None and self.renewal_ok:
            self.renewal_figures[key], self.renewal_errors[key] = renewal
        else:
            renewal = (float("nan"), float("nan"))
        self.rows.append((label, *value, *renewal, target))
        direct = not np.isfinite(renewal[0]) or (np.isfinite(value[1]) and not renewal[1] < value[1])
        self.judged_on[key] = "direct" if direct else "renewal"
        return value[0] if direct else renewal[0]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--arms", nargs="+", default=[*BASE_ARMS, *CONTROL_ARMS, *(f"pm_t2dm_{t}" for t in TREATMENTS)])
    parser.add_argument("--years", type=float, default=4.0)
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--size", type=int, default=60, help="block edge, voxels")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--set", action="append", default=[], metavar="[ARM:]KEY=VALUE",
                        help="config override (repeatable) for every arm, e.g. signalling.estrogen.refill_loss=0.2,"
                             " or for one arm with an ARM: prefix, e.g. t2dm:individual.microvascular_disease=0")
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
        check_arm_overrides(args.arms, args.set)
        days = 365.25 * args.years
        jobs = [(arm, seed) for seed in range(args.seeds) for arm in args.arms]  # whole seeds first
        n = len(jobs)
        # first the spin-ups that replicates still to simulate need, one per key (arms that share one would
        # otherwise simulate it side by side)
        first: dict[str, tuple[str, int]] = {}
        if args.cache:
            for arm, seed in jobs:
                if (Path(args.cache) / f"{replicate_key(arm, seed, days, args.size, tuple(args.set))}.npz").exists():
                    continue
                key = spinup_key(arm, seed, args.size, tuple(args.set))
                if key and not (Path(args.cache) / f"{key}.h5").exists():
                    first.setdefault(key, (arm, seed))
        with fresh_process_pool(args.workers) as pool:
            list(pool.map(spin_up_cached, [a for a, _ in first.values()], [s for _, s in first.values()],
                          [args.size] * len(first), [tuple(args.set)] * len(first), [args.cache] * len(first)))
        with fresh_process_pool(args.workers) as pool:
            runs = list(pool.map(run_cached, [a for a, _ in jobs], [s for _, s in jobs], [days] * n, [args.size] * n,
                                 [tuple(args.set)] * n, [args.cache] * n))
        scenarios = {arm: _scenario(arm, args.size, tuple(args.set)) for arm in args.arms}
        for r in runs:  # batch folders may override glucose: their runs keep the realised share
            r["keep"] = keep_probability(scenarios[r["arm"]], r["days"])
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

    def hazard_ratio(arm: str, ref: str) -> float:
        """Ratio of the arms' expected BMU activations (the model's hazard, thinned by glucose inhibition)."""
        if not renewal_ok:
            return float("nan")
        def total(name: str) -> float:
            return float(hazard_increments([r for r in runs if r["arm"] == name]).sum())
        return total(arm) / total(ref) if total(ref) else float("nan")

    def finite(values: dict[str, float]) -> dict[str, float | None]:  # strict JSON: nan -> null
        return {k: (v if np.isfinite(v) else None) for k, v in values.items()}

    targets: dict[str, bool] = {}
    renewal_ok = all("expected_bmu_activations" in r["series"]
                     and np.isfinite(r["series"]["expected_bmu_activations"][-1]) for r in runs)
    table = FigureTable(renewal_ok)
    add = table.add

    def renewal_pair(arm: str, ref: str, change, figure) -> tuple[float, float] | None:
        """``figure(expected path of arm, expected path of ref, days)`` with its jackknife error over seeds."""
        if not renewal_ok:
            return None
        return jackknife(runs, (arm, ref), lambda a, b: figure(*expected_changes([a, b], change), a[0]["days"], a, b))

    def start_value(arm_runs: list[dict], name: str) -> float:
        return float(np.mean([r["series"][name][0] for r in arm_runs]))

    def renewal_level(arm: str, ref: str, name: str, relative: bool, last: float) -> tuple[float, float] | None:
        """Percent difference of the expected mean level over the last ``last`` days."""
        def pct(ea, eb, d, a, b):
            tail = d >= d[-1] - last
            if relative:
                la = start_value(a, name) * (1.0 + ea[tail].mean() / 100.0)
                lb = start_value(b, name) * (1.0 + eb[tail].mean() / 100.0)
            else:
                la, lb = start_value(a, name) + ea[tail].mean(), start_value(b, name) + eb[tail].mean()
            return 100.0 * (la - lb) / lb if lb else float("nan")
        return renewal_pair(arm, ref, relative_change(name) if relative else absolute_change(name), pct)

    def renewal_rate(arm: str, ref: str, name: str) -> tuple[float, float] | None:
        """Percent difference of the expected mean of a per-day rate over the run."""
        return renewal_pair(arm, ref, cumulative(name), lambda ea, eb, d, a, b: 100.0 * (ea[-1] / eb[-1] - 1.0)
                            if eb[-1] else float("nan"))

    def change(name: str, start: float, stop: float, arm: str = "postmenopausal",
               ref: str = "premenopausal") -> tuple[float, float]:
        """Difference of the arms' rates of change of ``name`` between ``start`` and ``stop``, %/yr."""
        return paired(runs, arm, ref, lambda a, b: (
            rate_percent_per_year(a["days"], a["series"][name], start, stop)
            - rate_percent_per_year(b["days"], b["series"][name], start, stop)))

    def renewal_change(name: str, start: float, stop: float, arm: str = "postmenopausal",
                       ref: str = "premenopausal") -> tuple[float, float] | None:
        return renewal_pair(arm, ref, relative_change(name), lambda ea, eb, d, a, b: (
            rate_percent_per_year(d, 100.0 + ea, start, stop) - rate_percent_per_year(d, 100.0 + eb, start, stop)))

    if {"premenopausal", "postmenopausal"} <= set(args.arms):
        # SWAN measured spine aBMD, which DXA takes mostly from trabecular bone; the block's cortex (a third
        # of a 60^3 block, half its mineral) barely remodels and would dilute the loss, so the figure is the
        # trabecular compartment's vBMD; the whole-block aBMD change is printed beside it.
        early = add("estrogen_loss_early_pct_per_year", "trabecular BMD change, years 0-2, %/yr (post - pre)",
                    change("trabecular_vbmd_mg_cm3", 0, min(730, days)), "-3.3 .. -2.5",
                    renewal_change("trabecular_vbmd_mg_cm3", 0, min(730, days)))
        late = add("estrogen_loss_late_pct_per_year", "trabecular BMD change, after year 2, %/yr",
                   change("trabecular_vbmd_mg_cm3", 730, days), "about -1",
                   renewal_change("trabecular_vbmd_mg_cm3", 730, days))
        add("estrogen_loss_abmd_early_pct_per_year", "  whole-block aBMD change, years 0-2, %/yr",
            change("abmd_g_cm2", 0, min(730, days)), "(diluted by cortex)",
            renewal_change("abmd_g_cm2", 0, min(730, days)))
        add("estrogen_loss_abmd_late_pct_per_year", "  whole-block aBMD change, after year 2, %/yr",
            change("abmd_g_cm2", 730, days), "(diluted by cortex)", renewal_change("abmd_g_cm2", 730, days))
        targets["estrogen_loss_early_-3.3_to_-2.5"] = bool(-3.3 <= early <= -2.5)
        targets["estrogen_loss_late_about_-1"] = bool(-1.5 <= late <= -0.5) if days > 730 else False
        add("estrogen_loss_activation_ratio", "BMU activations, post / pre",
            (activation_ratio("postmenopausal", "premenopausal"), float("nan")),
            "about 2-3 (Recker 2004)", (hazard_ratio("postmenopausal", "premenopausal"), float("nan")))
    if {"premenopausal", "t2dm"} <= set(args.arms):
        checks = {
            "abmd": (relative("t2dm", "premenopausal", "abmd_g_cm2", 365.0), "0 .. +5 %", lambda v: 0 <= v <= 5,
                     renewal_level("t2dm", "premenopausal", "abmd_g_cm2", True, 365.0)),
            "resorbed": (relative("t2dm", "premenopausal", "resorbed_um3_per_day"), "-40 .. -20 %",
                         lambda v: -40 <= v <= -20, renewal_rate("t2dm", "premenopausal", "resorbed_um3_per_day")),
            "formed": (relative("t2dm", "premenopausal", "formed_um3_per_day"), "-40 .. -20 %",
                       lambda v: -40 <= v <= -20, renewal_rate("t2dm", "premenopausal", "formed_um3_per_day")),
            "cortical_porosity": (relative("t2dm", "premenopausal", "cortical_porosity", 365.0), ">= +25 %",
                                  lambda v: v >= 25,
                                  renewal_level("t2dm", "premenopausal", "cortical_porosity", False, 365.0)),
            "marrow_adiposity": (relative("t2dm", "premenopausal", "marrow_adiposity", 365.0), "> 0 %",
                                 lambda v: v > 0, None),  # not made by BMUs: no renewal estimate
        }
        for key, (value, target, ok, renewal) in checks.items():
            targets[f"t2dm_{key}"] = bool(ok(add(f"t2dm_vs_healthy_{key}_pct", f"T2DM vs healthy: {key.replace('_', ' ')}, %",
                                                 value, target, renewal)))
        # The level above is cross-sectional in the cohorts: women diabetic for years, heavier, whose skeleton
        # was denser before diagnosis. Both arms here start from the same bone, so what the mechanisms can show
        # within the run is the prospective figure: older women with diabetes lost aBMD faster than those
        # without (femoral neck -0.96 vs -0.59, total hip -0.98 vs -0.70, spine -0.33 vs +0.33 %/yr; radius
        # alike; SOF, Schwartz 2013 Front Endocrinol 4:62), a difference of about -0.3 to -0.7 %/yr.
        rate = add("t2dm_vs_healthy_abmd_rate_pct_per_year", "T2DM - healthy: aBMD change, %/yr",
                   change("abmd_g_cm2", 0, days, "t2dm", "premenopausal"), "-0.7 .. -0.25 (SOF)",
                   renewal_change("abmd_g_cm2", 0, days, "t2dm", "premenopausal"))
        targets["t2dm_faster_abmd_loss"] = bool(-0.7 <= rate <= -0.25)
        add("t2dm_activation_ratio", "BMU activations, T2DM / healthy",
            (activation_ratio("t2dm", "premenopausal"), float("nan")), "about 0.6-0.8",
            (hazard_ratio("t2dm", "premenopausal"), float("nan")))
        # healthy osteoblasts hardly ever die by ferroptosis: compare the rates, not their ratio
        deaths = {arm: mean_se([tail_mean(r, "deaths_osteoblast_ferroptosis", days) for r in runs if r["arm"] == arm])
                  for arm in ("t2dm", "premenopausal")}
        add("healthy_ferroptotic_ob_deaths_per_day", "ferroptotic OB deaths/day, healthy", deaths["premenopausal"], "")
        t2dm_deaths = add("t2dm_ferroptotic_ob_deaths_per_day", "ferroptotic OB deaths/day, T2DM", deaths["t2dm"],
                          "> healthy")
        targets["t2dm_more_ferroptotic_ob_deaths"] = bool(t2dm_deaths > deaths["premenopausal"][0])
    if {"t2dm", "pm_t2dm", "postmenopausal"} <= set(args.arms):
        # the target population: estrogen loss on a diabetic skeleton (no target of its own in the issue;
        # diabetic postmenopausal women keep an aBMD equal or higher than non-diabetic ones, Vestergaard 2007)
        trabecular = "trabecular_vbmd_mg_cm3"
        add("pm_t2dm_estrogen_loss_early_pct_per_year", "  in T2DM: trabecular BMD, years 0-2, %/yr (pm_t2dm - t2dm)",
            change(trabecular, 0, min(730, days), "pm_t2dm", "t2dm"), "(no target)",
            renewal_change(trabecular, 0, min(730, days), "pm_t2dm", "t2dm"))
        add("pm_t2dm_vs_postmenopausal_abmd_pct", "PM-T2DM vs postmenopausal: abmd, %",
            relative("pm_t2dm", "postmenopausal", "abmd_g_cm2", 365.0), "(no target; T2DM: 0 .. +5 %)",
            renewal_level("pm_t2dm", "postmenopausal", "abmd_g_cm2", True, 365.0))
    if {"pm_t2dm", "postmenopausal"} <= set(args.arms) and days > 730:
        # SOF's women were 65 or older, a decade and more past menopause: the prospective figure in the
        # population it was measured in compares estrogen-deficient women with and without diabetes once the
        # early loss is over (after year 2)
        add("pm_t2dm_vs_postmenopausal_abmd_rate_pct_per_year",
            "PM-T2DM - postmenopausal: aBMD change after year 2, %/yr",
            change("abmd_g_cm2", 730, days, "pm_t2dm", "postmenopausal"), "-0.7 .. -0.25 (SOF)",
            renewal_change("abmd_g_cm2", 730, days, "pm_t2dm", "postmenopausal"))
    balances: dict[str, dict[str, dict[str, float | None]]] = {}
    for arm in args.arms:
        for compartment in ("trabecular", "cortical"):
            b = bmu_balance([r for r in runs if r["arm"] == arm], compartment == "cortical")
            if b is not None:
                balances.setdefault(arm, {})[compartment] = finite(b)
    healthy = balances.get("premenopausal", {}).get("trabecular", {})
    if healthy.get("formation_days") is not None:  # the reference arm's remodelling cycle (BMU log)
        formation = add("healthy_formation_days", "healthy BMU formation period, days (trabecular)",
                        (healthy["formation_days"], float("nan") if healthy["formation_se"] is None
                         else healthy["formation_se"]), "65 .. 150 (Eriksen 1986)")
        targets["healthy_formation_65_to_150_days"] = bool(65 <= formation <= 150)
    for t in TREATMENTS:
        arm, control = f"pm_t2dm_{t}", control_arm(t)
        if arm not in args.arms:
            continue
        if control not in args.arms:
            print(f"note: {arm} is judged against {control}, which is not among --arms: no {t} rows", file=sys.stderr)
        else:
            untreated = "untreated PM-T2DM" + (f" ({control})" if control != "pm_t2dm" else "")
            value = add(f"{t}_abmd_vs_untreated_pct", f"{t}: aBMD vs {untreated}, %",
                        relative(arm, control, "abmd_g_cm2", 365.0), f"> 0 % (less loss); {TREATMENT_EVIDENCE[t]}",
                        renewal_level(arm, control, "abmd_g_cm2", True, 365.0))
            targets[f"{t}_raises_abmd"] = bool(value > 0)
            # how it got there (informative): the ferroptotic deaths it spares and the cortical pores it leaves
            add(f"{t}_ferroptotic_ob_deaths_vs_untreated_per_day", f"  {t}: ferroptotic OB deaths/day, - untreated",
                paired(runs, arm, control, lambda a, b: tail_mean(a, "deaths_osteoblast_ferroptosis", days)
                       - tail_mean(b, "deaths_osteoblast_ferroptosis", days)), "")
            add(f"{t}_cortical_porosity_vs_untreated_pct", f"  {t}: cortical porosity vs untreated, %",
                relative(arm, control, "cortical_porosity", 365.0), "",
                renewal_level(arm, control, "cortical_porosity", False, 365.0))

    cached = sum(bool(r.get("cached")) for r in runs)
    print(f"{len(args.arms)} arms x {args.seeds} seeds, {shape}, {args.years:g} years"
          f" ({cached} of {len(runs)} replicates not simulated now)")
    print(f"{'figure':<52} {'direct':>9} {'+- se':>7} {'renewal':>9} {'+- se':>7}   target")
    def cell(value: float, se: float) -> str:  # a figure and its error, blank where there is none
        return (f"{value:>+9.3g}" if np.isfinite(value) else f"{'':>9}") + (f" {se:>7.2g}" if np.isfinite(se) else f" {'':>7}")

    for label, value, se, r_value, r_se, target in table.rows:
        print(f"{label:<52} {cell(value, se)} {cell(r_value, r_se)}   {target}")
    if renewal_ok:  # the hazard is the compensator of the draws: realised counts should match it within Poisson noise
        counts = []
        for arm in args.arms:
            arm_runs = [r for r in runs if r["arm"] == arm]
            realised = sum(float(r["series"]["bmu_activations"][-1]) for r in arm_runs)
            count = f"{arm} {realised:.0f} / {hazard_increments(arm_runs).sum() * len(arm_runs):.1f}"
            if bmu_compartments(arm_runs) == (False, True):  # the realised mix against the hazard's
                cortical = sum(int(np.count_nonzero((np.asarray(r["bmus"]["opened"]) >= 0)
                                                    & (np.asarray(r["bmus"]["cortical"]) > 0))) for r in arm_runs)
                count += f" (cortical {cortical} / {hazard_increments(arm_runs, True).sum() * len(arm_runs):.1f})"
            counts.append(count)
        print("BMU activations realised / expected from the hazard: " + ", ".join(counts))
    if balances:  # what each BMU leaves behind, the mechanism behind the porosity and BMD figures
        print("BMUs of each arm, pooled over seeds (refill = formed / resorbed of the closed ones):")
        print(f"  {'arm':<24} {'compartment':<11} {'opened/yr':>9} {'resorbed vox':>12}"
              f" {'+- se':>6} {'closed':>6} {'short':>5} {'refill':>7} {'+- se':>6} {'formation d':>11} {'+- se':>6}")
        for arm, by_compartment in balances.items():
            for compartment, b in by_compartment.items():
                v = {k: (x if x is not None else float("nan")) for k, x in b.items()}
                print(f"  {arm:<24} {compartment:<11} {v['opened_per_year']:>9.2f} {v['resorbed_voxels']:>12.0f}"
                      f" {v['resorbed_se']:>6.0f} {v['closed']:>6.0f} {v['short']:>5.0f} {v['refill']:>7.3f}"
                      f" {v['refill_se']:>6.3f} {v['formation_days']:>11.0f} {v['formation_se']:>6.0f}")
    simulated = [r["wall_s"] for r in runs if not r.get("cached")]
    if simulated:
        print(f"wall time per simulated replicate: {np.mean(simulated):.0f} s")
    print(json.dumps({"figures": finite(table.figures), "standard_errors": finite(table.errors),
                      "renewal_figures": finite(table.renewal_figures),
                      "renewal_standard_errors": finite(table.renewal_errors), "judged_on": table.judged_on,
                      "renewal_profiles": "per compartment" if bmu_compartments(runs) == (False, True) else "pooled",
                      "targets_met": targets, "bmu_balance": balances}, allow_nan=False))


if __name__ == "__main__":
    from abm.errors import UserError

    try:
        main()
    except UserError as error:  # bad arm, override or size: one line, no traceback
        raise SystemExit(f"calibrate_disease: {error}") from None

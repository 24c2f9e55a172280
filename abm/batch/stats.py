"""Statistics of a batch's tidy table: arm time courses, end-point effect sizes, sensitivity indices.

Groups are the batch's conditions: one per arm, or one per (arm, sample) when the
batch sweeps parameters; replicates are the observations of a group.

* :func:`time_courses`: per group and time, the mean over replicates and its 95 %
  confidence interval, mean +- t(0.975, n-1) s / sqrt(n).
* :func:`effect_sizes`: per metric and group, the end-point (or ``at``) difference to
  the reference group with Welch's 95 % CI (Welch-Satterthwaite degrees of freedom),
  the percent change with a delta-method 95 % CI on the ratio of means (same degrees
  of freedom), and Welch's t statistic and two-sided p-value
  (``scipy.stats.ttest_ind(equal_var=False)``).
* :func:`sensitivity`: per arm and metric, SALib's Sobol' (S1, ST with 95 % CI
  half-widths) or Morris (mu, mu_star with 95 % CI half-width, sigma) indices of the
  replicate mean at the end point (or ``at``).
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from abm.errors import UserError

#: Metrics compared when none are named (those that are defined in the table).
DEFAULT_METRICS = ("bv_tv", "porosity", "cortical_porosity", "vbmd_mg_cm3", "abmd_g_cm2", "tmd_mg_cm3")
#: Columns of the tidy table that are not metrics.
ID_COLUMNS = ("run_id", "arm", "sample", "replicate", "seed", "time_days")


def metric_columns(table: pd.DataFrame) -> list[str]:
    """Every metric column of a tidy table (not ids, parameters or time)."""
    skip = set(ID_COLUMNS) | set(table.attrs.get("parameters", []))
    return [c for c in table.columns if c not in skip and pd.api.types.is_numeric_dtype(table[c])]


def choose_metrics(table: pd.DataFrame, metrics: Sequence[str] | None) -> list[str]:
    """The named metrics (checked), or the defined ones of :data:`DEFAULT_METRICS`."""
    known = metric_columns(table)
    if metrics:
        bad = [m for m in metrics if m not in known]
        if bad:
            raise UserError(f"--metrics: unknown metric {bad[0]!r} (allowed: {', '.join(known)})")
        return list(dict.fromkeys(metrics))
    chosen = [m for m in DEFAULT_METRICS if m in known and np.isfinite(table[m].to_numpy(float)).any()]
    if not chosen:
        raise UserError("no default metric is defined in this batch; name some with --metrics")
    return chosen


def add_groups(table: pd.DataFrame) -> tuple[pd.DataFrame, list[str]]:
    """The table with a ``group`` column (arm, plus parameter values if swept) and the groups in design order."""
    if table.empty:
        raise UserError("the batch table has no rows (did every run fail? see index.csv)")
    params = [p for p in table.attrs.get("parameters", []) if p in table.columns]
    arms = list(table.attrs.get("arms") or dict.fromkeys(table["arm"]))
    order = {arm: i for i, arm in enumerate(arms)}
    table = table.copy()
    samples = table.groupby("arm")["sample"].nunique()
    if params and (samples > 1).any():
        def label(row: pd.Series) -> str:
            values = ", ".join(f"{p.rsplit('.', 1)[-1]}={_short(row[p])}" for p in params)
            return f"{row['arm']} ({values})"
        labels = table[["arm", *params]].drop_duplicates().apply(label, axis=1)
        keyed = table[["arm", *params]].drop_duplicates().assign(group=labels.to_numpy())
        table = table.merge(keyed, on=["arm", *params], how="left")
    else:
        table["group"] = table["arm"]
    first = table.groupby("group").agg(arm=("arm", "first"), sample=("sample", "min"))
    groups = sorted(first.index, key=lambda g: (order.get(first.loc[g, "arm"], len(order)), first.loc[g, "sample"]))
    return table, groups


def _short(value: Any) -> str:
    return f"{value:.4g}" if isinstance(value, (float, np.floating)) else str(value)


def time_courses(table: pd.DataFrame, metrics: Sequence[str]) -> pd.DataFrame:
    """Per group, metric and time: n, mean, sd, ci_low, ci_high (95 %, t-based) over replicates."""
    from scipy import stats

    rows = []
    for (group, time), part in table.groupby(["group", "time_days"], sort=False):
        for metric in metrics:
            values = part[metric].to_numpy(float)
            values = values[np.isfinite(values)]
            n = len(values)
            mean = values.mean() if n else math.nan
            sd = values.std(ddof=1) if n > 1 else math.nan
            half = stats.t.ppf(0.975, n - 1) * sd / math.sqrt(n) if n > 1 else math.nan
            rows.append({"group": group, "metric": metric, "time_days": time, "n": n, "mean": mean, "sd": sd,
                         "ci_low": mean - half, "ci_high": mean + half})
    return pd.DataFrame(rows).sort_values(["metric", "group", "time_days"], kind="stable", ignore_index=True)


def at_time(table: pd.DataFrame, at: float | None) -> tuple[pd.DataFrame, float]:
    """One row per run: its last time (``at`` None) or the sample nearest ``at``; and that time."""
    last = table.groupby("run_id")["time_days"].max()
    if at is None:
        when = float(last.min())
        if not np.allclose(last.to_numpy(float), when):
            raise UserError(f"runs end at different times ({last.min():g} to {last.max():g} d); choose one with --at")
    else:
        if not 0 <= at <= float(last.min()) + 1e-9:
            raise UserError(f"--at: {at:g} d is outside the runs (allowed 0 to {last.min():g} d)")
        when = float(at)
    index = (table["time_days"] - when).abs().groupby(table["run_id"]).idxmin()
    rows = table.loc[index.to_numpy()]
    return rows, float(rows["time_days"].median())


def welch(a: np.ndarray, b: np.ndarray) -> dict[str, float]:
    """Welch comparison of ``b`` against reference ``a`` (see the module doc)."""
    from scipy import stats

    a = a[np.isfinite(a)]
    b = b[np.isfinite(b)]
    na, nb = len(a), len(b)
    out = {"n_reference": na, "n": nb, "mean_reference": a.mean() if na else math.nan,
           "mean": b.mean() if nb else math.nan}
    out["difference"] = out["mean"] - out["mean_reference"]
    out["percent_change"] = 100.0 * out["difference"] / out["mean_reference"] if out["mean_reference"] else math.nan
    nan = dict.fromkeys(("difference_ci_low", "difference_ci_high", "percent_ci_low", "percent_ci_high",
                         "welch_t", "welch_df", "p_value"), math.nan)
    out.update(nan)
    if na < 2 or nb < 2:
        return out
    va, vb = a.var(ddof=1) / na, b.var(ddof=1) / nb
    se = math.sqrt(va + vb)
    if se == 0:
        out.update(difference_ci_low=out["difference"], difference_ci_high=out["difference"])
        if out["difference"] == 0:
            out.update(percent_ci_low=0.0, percent_ci_high=0.0, welch_t=0.0, p_value=1.0)
        return out
    df = (va + vb) ** 2 / (va**2 / (na - 1) + vb**2 / (nb - 1))
    q = stats.t.ppf(0.975, df)
    out.update(difference_ci_low=out["difference"] - q * se, difference_ci_high=out["difference"] + q * se,
               welch_df=df)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        test = stats.ttest_ind(b, a, equal_var=False)
    out.update(welch_t=float(test.statistic), p_value=float(test.pvalue))
    ma, mb = out["mean_reference"], out["mean"]
    if ma != 0:
        ratio = mb / ma
        se_ratio = math.sqrt(vb / ma**2 + mb**2 * va / ma**4)  # delta method
        out.update(percent_ci_low=100.0 * (ratio - q * se_ratio - 1), percent_ci_high=100.0 * (ratio + q * se_ratio - 1))
    return out


def effect_sizes(table: pd.DataFrame, groups: Sequence[str], metrics: Sequence[str], at: float | None,
                 reference: str | None = None) -> pd.DataFrame:
    """End-point effects of every group against the reference (default: the first group)."""
    reference = groups[0] if reference is None else reference
    if reference not in groups:
        raise UserError(f"--reference: unknown arm {reference!r} (allowed: {', '.join(groups)})")
    rows, when = at_time(table, at)
    units = table.attrs.get("units", {})
    out = []
    for metric in metrics:
        ref = rows.loc[rows["group"] == reference, metric].to_numpy(float)
        for group in groups:
            if group == reference:
                continue
            values = rows.loc[rows["group"] == group, metric].to_numpy(float)
            out.append({"metric": metric, "units": units.get(metric, ""), "at_days": when, "group": group,
                        "reference": reference, **welch(ref, values)})
    columns = ["metric", "units", "at_days", "group", "reference", "n", "n_reference", "mean", "mean_reference",
               "difference", "difference_ci_low", "difference_ci_high", "percent_change", "percent_ci_low",
               "percent_ci_high", "welch_t", "welch_df", "p_value"]
    return pd.DataFrame(out, columns=columns)


# ------------------------------------------------------------------ sensitivity
def sensitivity(table: pd.DataFrame, meta: dict[str, Any], metrics: Sequence[str], at: float | None,
                seed: int = 0) -> tuple[pd.DataFrame, float, list[str]]:
    """Sobol' or Morris indices per arm and metric; also the time used and notes on skipped cases."""
    from SALib.analyze import morris as morris_analyze
    from SALib.analyze import sobol as sobol_analyze

    from abm.batch.plan import salib_problem
    from abm.batch.spec import Sweep

    sweep_data = meta.get("sweep")
    if not sweep_data or sweep_data.get("method") not in ("sobol", "morris"):
        method = (sweep_data or {}).get("method", "no sweep")
        raise UserError(f"sensitivity needs a batch with a sobol or morris sweep (this one: {method})")
    sweep = Sweep.model_validate(sweep_data)
    problem = salib_problem(sweep)
    samples = meta["samples"]  # as run (integer parameters rounded)
    matrix = np.array([[s[p.key] for p in sweep.parameters] for s in samples], float)
    n_samples = len(samples)
    rows, when = at_time(table, at)
    notes = []
    out = []
    arms = list(table.attrs.get("arms") or dict.fromkeys(table["arm"]))
    for arm in arms:
        part = rows[rows["arm"] == arm]
        for metric in metrics:
            means = part.groupby("sample")[metric].mean()
            y = means.reindex(range(n_samples)).to_numpy(float)
            missing = int((~np.isfinite(y)).sum())
            if missing:
                notes.append(f"arm {arm}, {metric}: {missing} of {n_samples} samples have no value (failed runs or "
                             "undefined metric); skipped")
                continue
            if np.ptp(y) == 0:
                notes.append(f"arm {arm}, {metric}: the same value in every sample, indices undefined; skipped")
                continue
            with warnings.catch_warnings(), np.errstate(all="ignore"):
                warnings.simplefilter("ignore")
                if sweep.method == "sobol":
                    res = sobol_analyze.analyze(problem, y, calc_second_order=sweep.second_order, conf_level=0.95,
                                                seed=seed)
                    for i, name in enumerate(problem["names"]):
                        out.append({"arm": arm, "metric": metric, "at_days": when, "parameter": name,
                                    "S1": res["S1"][i], "S1_conf": res["S1_conf"][i],
                                    "ST": res["ST"][i], "ST_conf": res["ST_conf"][i]})
                else:
                    res = morris_analyze.analyze(problem, matrix, y, num_levels=sweep.levels, conf_level=0.95,
                                                 seed=seed)
                    for i, name in enumerate(problem["names"]):
                        out.append({"arm": arm, "metric": metric, "at_days": when, "parameter": name,
                                    "mu": float(res["mu"][i]), "mu_star": float(res["mu_star"][i]),
                                    "mu_star_conf": float(res["mu_star_conf"][i]), "sigma": float(res["sigma"][i])})
    if not out:
        raise UserError("sensitivity: nothing to analyse (" + "; ".join(notes) + ")")
    return pd.DataFrame(out), when, notes

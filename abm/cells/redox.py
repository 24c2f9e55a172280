"""Per-cell redox state: iron and ferroptosis, mitochondria and mitophagy.

Each cell carries the float32 columns of :data:`STATE` (units in :data:`UNITS`;
a.u. are 1 in the healthy steady state). :func:`step_redox` advances them by one
agent step from the cell's local glucose, ROS field, extracellular labile iron
and matrix AGE exposure, plus per-run treatment and individual factors, and
writes per cell: ferroptotic death (lipid peroxide above the cell's threshold),
mitochondrial ROS released into the cell's voxel, the mitochondrial (Bax/Cyt-c)
apoptosis hazard, the ATP-limited matrix-synthesis multiplier and the
inflammatory signal released by a ferroptotic death.

Equations (t in hours; h(G) = e^n / (K^n + e^n), e = max(G - G_normal, 0) mM, is
the hyperglycaemic drive, 0..1; doses are dimensionless, 1 = standard dose):

* exposure X (mM): dX/dt = (e - X) / tau_X  (running mean of the glucose excess)
* intracellular ROS (1 = healthy): R = r_mito + w (ros_field - ros_ref), floored at 0,
  r_mito = beta (1 + (kappa - 1) D) / ((1 + (kappa - 1) D0) (1 + a_ros ampk))
* damaged fraction D: dD/dt = k_d s (1 - D) - mu0 phi D, with
  s = 1 + a_G h + a_R max(R - 1, 0) + a_AGE max(AGE - AGE_ref, 0),
  phi = (1 + a_ind h) / (1 + (X / X_half)^m) (1 + a_ampk ampk) (1 + a_glp glp1)
  (relative mitophagy activity; acute glucose induces it, sustained exposure
  impairs it) and k_d = mu0 D0 / (1 - D0), so D0 is the healthy steady state
* mitochondrial mass M: dM/dt = k_bio (1 - M) - k_ex max(phi - phi_max, 0) M
  (too much mitophagy also removes healthy mitochondria)
* ATP A: dA/dt = (M (1 - D) / (1 - D0) - A) / tau_A
* labile iron I: dI/dt = k_in u - (k_out x + k_chel dfo + k_seq eps (1 - F)) I, with TfR1/DMT1
  uptake u = (1 + U h) max(1 + w_Fe (iron - iron_ref), 0) / (1 + b_dfo dfo), ferroportin
  export x = 1 / (1 + X_fpn h), FtMt expression eps and k_in = k_out + k_seq (1 - F0)
* FtMt iron fill F (0..1 of capacity): dF/dt = k_F (q eps I (1 - F) - F), q = F0 / (1 - F0)
* GSH g: dg/dt = k_g (sigma (1 + gamma) - (1 + gamma omega) g), with synthesis
  sigma = (1 + s_nac nac) / (1 + s_G h) and oxidative load omega = (R + lambda L) / (1 + lambda)
* lipid peroxide L: dL/dt = k_L (I R - (pi g + 1 - pi + f_fer fer1) L)  (Fenton production,
  GPX4 and GSH-independent removal, ferrostatin-1 scavenging)
* ferroptosis: L > threshold of the cell (drawn once per cell, log-normal)
* sub-lethal peroxidation: function multiplier 1 / (1 + s_L max(L - 1, 0)) on matrix synthesis and
  pre-osteoblast differentiation (``peroxide_function_loss`` s_L; 0 = off)

Every variable is advanced by the exact solution of its linear ODE with the
other variables frozen (in the order listed), so each stays between its old
value and a non-negative fixed point: bounded and non-negative for any dt.

Calibration assumption (defaults of :mod:`abm.config.redox`): at 5 mM glucose
and no treatment the state stays at :func:`initial_state` and no cell dies (the
healthy lipid peroxide, 1, lies 4.4 log-SDs below the median threshold, 35). In
a closed cohort of osteoblast-like cells that starts healthy and is held at a
uniform fasting glucose (no ROS field, iron field or AGE), ferroptosis kills
about 1 %/month at 9 mM, 2-3 %/month at 9.5 mM and 4-5 %/month at 10 mM over
the first three months (none at 5 mM; 0.1 % and 0.4 % in six months at 7 and
8 mM), while lipid peroxide climbs as the sustained exposure impairs mitophagy
and the FtMt store fills; the rate then falls as the cohort's susceptible tail
is used up (six-month totals 4, 7 and 14 %). In the model new cells keep
arriving, so the rate is sustained. Mitochondrial apoptosis adds about
0.5 %/month at 9.5 mM. The reviews give directions only; every magnitude is an
assumption to be revisited against data.
"""

from __future__ import annotations

from dataclasses import dataclass

import numba
import numpy as np

from abm.config.redox import RedoxConfig

#: Per-cell outputs of a step (``ferroptotic`` is bool, the others float32).
OUTPUTS = ("ferroptotic", "mito_ros_release_per_s", "apoptosis_per_day", "synthesis_multiplier", "inflammatory_release",
           "peroxide_multiplier")
#: Per-cell state columns (all float32).
STATE = (
    "labile_iron", "mito_ferritin", "gsh", "lipid_peroxide", "damaged_mito", "mito_mass", "atp",
    "glucose_exposure", "ferroptosis_threshold",
)
UNITS = {
    "labile_iron": "a.u. (1 = healthy labile iron pool)",
    "mito_ferritin": "1 (fraction of mitochondrial-ferritin iron capacity filled)",
    "gsh": "a.u. (GSH/GPX4 capacity, 1 = healthy)",
    "lipid_peroxide": "a.u. (L-OOH, 0 = none, 1 = healthy level)",
    "damaged_mito": "1 (fraction of mitochondria damaged)",
    "mito_mass": "a.u. (mitochondrial mass, 1 = healthy)",
    "atp": "a.u. (1 = healthy)",
    "glucose_exposure": "mM (running mean of glucose above normal)",
    "ferroptosis_threshold": "a.u. (lipid peroxide at which this cell dies)",
}

# Positions in the parameter array built by :func:`params_array` (rates in 1/h).
(
    FERROPTOSIS_ON, MITO_ON, NORMAL_GLUCOSE, GLUCOSE_HALF, GLUCOSE_HILL, ROS_REF, ROS_WEIGHT,
    K_OUT, K_IN, TFR1_GAIN, FPN_SUPPRESSION, IRON_REF, IRON_GAIN, K_SEQ, FTMT_Q, K_FTMT, DFO_BLOCK, DFO_CHELATION,
    K_GSH, GSH_CONSUMPTION, GSH_LP_WEIGHT, GSH_GLUCOSE, NAC_GAIN,
    K_LP, GPX4_FRACTION, FER1_GAIN, RELEASE, PEROXIDE_LOSS,
    D0, MU0, K_DAMAGE, GLUCOSE_DAMAGE, ROS_DAMAGE, AGE_DAMAGE, AGE_REF, ACUTE_INDUCTION, K_EXPOSURE,
    IMPAIR_HALF, IMPAIR_HILL, ROS_RATIO, ROS_RELEASE, AMPK_MITOPHAGY, AMPK_ROS, GLP1_MITOPHAGY,
    FLUX_MAX, FLUX_LOSS, K_BIO, K_ATP, SYN_HALF, SYN_HILL, APO_THRESHOLD, APO_HALF, APO_HILL, APO_MAX,
    N_PARAMS,
) = range(55)


def params_array(config: RedoxConfig) -> np.ndarray:
    """The kernel's parameters (float64, indexed by the module constants) from the config.

    Rates are converted to 1/h, and the uptake and damage rates are derived so
    that the healthy state of :func:`initial_state` is a steady state.
    """
    fe, mi = config.ferroptosis, config.mitochondria
    p = np.full(N_PARAMS, np.nan)
    p[FERROPTOSIS_ON], p[MITO_ON] = float(fe.enabled), float(mi.enabled)
    p[NORMAL_GLUCOSE], p[GLUCOSE_HALF] = config.normal_glucose_mM, config.glucose_half_effect_mM
    p[GLUCOSE_HILL] = config.glucose_hill
    p[ROS_REF], p[ROS_WEIGHT] = config.ros_field_reference, config.ros_field_weight
    p[K_OUT] = 1.0 / fe.iron_export_time_constant_hours
    p[K_SEQ] = fe.mito_ferritin_sequestration_per_hour
    p[K_IN] = p[K_OUT] + p[K_SEQ] * (1.0 - fe.mito_ferritin_healthy_fill)
    p[TFR1_GAIN], p[FPN_SUPPRESSION] = fe.tfr1_uptake_gain, fe.ferroportin_suppression
    p[IRON_REF], p[IRON_GAIN] = fe.iron_field_reference, fe.iron_field_uptake_gain
    p[FTMT_Q] = fe.mito_ferritin_healthy_fill / (1.0 - fe.mito_ferritin_healthy_fill)
    p[K_FTMT] = 1.0 / (24.0 * fe.mito_ferritin_turnover_days)
    p[DFO_BLOCK], p[DFO_CHELATION] = fe.deferoxamine_uptake_block, fe.deferoxamine_chelation_per_hour
    p[K_GSH] = 1.0 / fe.gsh_time_constant_hours
    p[GSH_CONSUMPTION], p[GSH_LP_WEIGHT] = fe.gsh_oxidative_consumption, fe.gsh_lipid_peroxide_weight
    p[GSH_GLUCOSE], p[NAC_GAIN] = fe.gsh_glucose_suppression, fe.nac_synthesis_gain
    p[K_LP] = 1.0 / fe.lipid_peroxide_time_constant_hours
    p[GPX4_FRACTION], p[FER1_GAIN] = fe.gpx4_fraction, fe.ferrostatin_scavenging_gain
    p[RELEASE] = fe.inflammatory_release_per_death
    p[PEROXIDE_LOSS] = fe.peroxide_function_loss
    p[D0] = mi.healthy_damaged_fraction
    p[MU0] = 1.0 / mi.mitophagy_time_constant_hours
    p[K_DAMAGE] = p[MU0] * p[D0] / (1.0 - p[D0])
    p[GLUCOSE_DAMAGE], p[ROS_DAMAGE], p[AGE_DAMAGE] = mi.glucose_damage_gain, mi.ros_damage_gain, mi.age_damage_gain
    p[AGE_REF], p[ACUTE_INDUCTION] = mi.age_reference, mi.acute_mitophagy_induction
    p[K_EXPOSURE] = 1.0 / (24.0 * mi.exposure_time_constant_days)
    p[IMPAIR_HALF], p[IMPAIR_HILL] = mi.impairment_half_exposure_mM, mi.impairment_hill
    p[ROS_RATIO], p[ROS_RELEASE] = mi.damaged_ros_ratio, mi.ros_release_per_s
    p[AMPK_MITOPHAGY], p[AMPK_ROS], p[GLP1_MITOPHAGY] = mi.ampk_mitophagy_gain, mi.ampk_ros_reduction, mi.glp1_mitophagy_gain
    p[FLUX_MAX], p[FLUX_LOSS] = mi.excess_flux_threshold, mi.excess_flux_loss_per_hour
    p[K_BIO] = 1.0 / (24.0 * mi.biogenesis_time_constant_days)
    p[K_ATP] = 1.0 / mi.atp_time_constant_hours
    p[SYN_HALF], p[SYN_HILL] = mi.synthesis_half_atp, mi.synthesis_hill
    p[APO_THRESHOLD], p[APO_HALF], p[APO_HILL] = mi.apoptosis_damage_threshold, mi.apoptosis_half_excess, mi.apoptosis_hill
    p[APO_MAX] = mi.apoptosis_max_per_day
    assert np.isfinite(p).all(), "every parameter must be set"
    return p


def initial_state(n: int, config: RedoxConfig | None = None,
                  rng: np.random.Generator | None = None) -> dict[str, np.ndarray]:
    """The healthy steady state for ``n`` new cells (float32 columns of :data:`STATE`).

    Each cell's ferroptosis threshold is drawn log-normal around the configured
    median with ``rng``; without ``rng`` every cell gets the median.
    """
    config = config or RedoxConfig()
    fe, mi = config.ferroptosis, config.mitochondria
    state = {name: np.ones(n, np.float32) for name in STATE}
    state["mito_ferritin"][:] = fe.mito_ferritin_healthy_fill
    state["damaged_mito"][:] = mi.healthy_damaged_fraction
    state["glucose_exposure"][:] = 0.0
    spread = rng.standard_normal(n) * fe.threshold_spread if rng is not None else np.zeros(n)
    state["ferroptosis_threshold"][:] = fe.threshold * np.exp(spread)
    return state


@dataclass(frozen=True)
class Modifiers:
    """Per-run treatment doses (1 = standard dose) and individual factors, all dimensionless."""

    deferoxamine: float = 0.0  #: iron chelation
    nac: float = 0.0  #: N-acetylcysteine: GSH synthesis
    ferrostatin: float = 0.0  #: ferrostatin-1: lipid peroxide scavenging
    ampk: float = 0.0  #: metformin: AMPK activation
    glp1: float = 0.0  #: GLP-1 analogue: autophagy
    basal_ros_multiplier: float = 1.0  #: mtDNA variants (ND2, Mt4823, mt15885): 1 = reference genotype
    mito_ferritin_expression: float = 1.0  #: FtMt expression, 1 = normal

    def __post_init__(self) -> None:
        negative = [name for name, value in vars(self).items() if not value >= 0]
        if negative:
            raise ValueError(f"redox modifiers must be >= 0: {', '.join(negative)}")


@numba.njit(cache=True, inline="always")
def _relax(x, fixed, rate, dt):
    """Exact step of dx/dt = rate (fixed - x): stays between x and the fixed point."""
    return fixed + (x - fixed) * np.exp(-rate * dt)


@numba.njit(cache=True, inline="always")
def _hill(x, half, n):
    """x^n / (half^n + x^n) for x >= 0 (0 at x = 0)."""
    if x <= 0.0:
        return 0.0
    r = (x / half) ** n
    return r / (1.0 + r)


@numba.njit(cache=True, inline="always")
def _mito_ros(d, p, beta, ampk):
    """Intracellular mitochondrial ROS relative to the healthy cell."""
    extra = p[ROS_RATIO] - 1.0
    return beta * (1.0 + extra * d) / ((1.0 + extra * p[D0]) * (1.0 + p[AMPK_ROS] * ampk))


@numba.njit(cache=True, inline="always")
def _mitochondria(d, mass, atp, drive, exposure, ros_outside, age, ampk, glp1, beta, p, dt):
    """One step of damaged fraction, mitochondrial mass and ATP; returns the three."""
    ros = max(_mito_ros(d, p, beta, ampk) + ros_outside, 0.0)
    stress = (1.0 + p[GLUCOSE_DAMAGE] * drive + p[ROS_DAMAGE] * max(ros - 1.0, 0.0)
              + p[AGE_DAMAGE] * max(age - p[AGE_REF], 0.0))
    flux = ((1.0 + p[ACUTE_INDUCTION] * drive) * (1.0 - _hill(exposure, p[IMPAIR_HALF], p[IMPAIR_HILL]))
            * (1.0 + p[AMPK_MITOPHAGY] * ampk) * (1.0 + p[GLP1_MITOPHAGY] * glp1))
    damage = p[K_DAMAGE] * stress
    clearance = damage + p[MU0] * flux
    d = _relax(d, damage / clearance, clearance, dt)
    loss = p[FLUX_LOSS] * max(flux - p[FLUX_MAX], 0.0)  # excessive mitophagy also takes healthy mitochondria
    mass = _relax(mass, p[K_BIO] / (p[K_BIO] + loss), p[K_BIO] + loss, dt)
    atp = _relax(atp, mass * (1.0 - d) / (1.0 - p[D0]), p[K_ATP], dt)
    return d, mass, atp


@numba.njit(cache=True, inline="always")
def _iron(iron, fill, drive, iron_field, deferoxamine, eps, p, dt):
    """One step of the labile iron pool and the FtMt store fill; returns both."""
    outside = max(1.0 + p[IRON_GAIN] * (iron_field - p[IRON_REF]), 0.0)
    uptake = p[K_IN] * (1.0 + p[TFR1_GAIN] * drive) * outside / (1.0 + p[DFO_BLOCK] * deferoxamine)
    removal = (p[K_OUT] / (1.0 + p[FPN_SUPPRESSION] * drive) + p[DFO_CHELATION] * deferoxamine
               + p[K_SEQ] * eps * (1.0 - fill))
    iron = _relax(iron, uptake / removal, removal, dt)
    load = p[FTMT_Q] * eps * iron
    fill = _relax(fill, load / (1.0 + load), p[K_FTMT] * (1.0 + load), dt)
    return iron, fill


@numba.njit(cache=True, inline="always")
def _peroxidation(g, lp, iron, ros, drive, nac, ferrostatin, p, dt):
    """One step of GSH/GPX4 capacity and lipid peroxide; returns both."""
    synthesis = (1.0 + p[NAC_GAIN] * nac) / (1.0 + p[GSH_GLUCOSE] * drive)
    oxidative = (ros + p[GSH_LP_WEIGHT] * lp) / (1.0 + p[GSH_LP_WEIGHT])
    use = 1.0 + p[GSH_CONSUMPTION] * oxidative
    g = _relax(g, synthesis * (1.0 + p[GSH_CONSUMPTION]) / use, p[K_GSH] * use, dt)
    removal = p[GPX4_FRACTION] * g + 1.0 - p[GPX4_FRACTION] + p[FER1_GAIN] * ferrostatin
    lp = _relax(lp, iron * ros / removal, p[K_LP] * removal, dt)
    return g, lp


@numba.njit(cache=True, inline="always")
def _synthesis(atp, p):
    """Matrix-synthesis multiplier: a Hill function of ATP scaled to 1 at healthy ATP, capped at 1."""
    half_n = p[SYN_HALF] ** p[SYN_HILL]
    atp_n = max(atp, 0.0) ** p[SYN_HILL]
    return min(atp_n * (half_n + 1.0) / (half_n + atp_n), 1.0)


@numba.njit(parallel=True, cache=True)
def step_redox(labile_iron, mito_ferritin, gsh, lipid_peroxide, damaged_mito, mito_mass, atp, glucose_exposure,
               ferroptosis_threshold, glucose_mM, ros_field, iron_field, age_exposure, dt_hours, deferoxamine, nac,
               ferrostatin, ampk, glp1, basal_ros_multiplier, mito_ferritin_expression, params, ferroptotic,
               mito_ros_release_per_s, apoptosis_per_day, synthesis_multiplier, inflammatory_release,
               peroxide_multiplier):  # pragma: no cover
    """Advance every cell's redox state by ``dt_hours`` (module docstring: equations).

    State columns (float32, updated in place) are those of :data:`STATE`;
    per-cell inputs (float32): ``glucose_mM`` (mM), ``ros_field`` (ROS field
    units), ``iron_field`` (iron field units), ``age_exposure`` (AGE units);
    per-run scalars: the doses and factors of :class:`Modifiers`; ``params``
    from :func:`params_array`. Writes per cell ``ferroptotic`` (bool),
    ``mito_ros_release_per_s`` (ROS field units/s into the cell's voxel),
    ``apoptosis_per_day`` (mitochondrial apoptosis hazard, 1/day),
    ``synthesis_multiplier`` (0..1, ATP-limited matrix synthesis),
    ``inflammatory_release`` (field units x voxel, per inflammatory field) and
    ``peroxide_multiplier`` (0..1, sub-lethal lipid peroxidation on matrix synthesis and differentiation).
    Cells are independent, so results do not depend on the thread count.
    Returns the number of ferroptotic cells.
    """
    p = params
    dt = dt_hours
    n_dead = 0
    for c in numba.prange(labile_iron.shape[0]):
        excess = max(glucose_mM[c] - p[NORMAL_GLUCOSE], 0.0)
        drive = _hill(excess, p[GLUCOSE_HALF], p[GLUCOSE_HILL])
        exposure = _relax(np.float64(glucose_exposure[c]), excess, p[K_EXPOSURE], dt)
        glucose_exposure[c] = exposure
        ros_outside = p[ROS_WEIGHT] * (ros_field[c] - p[ROS_REF])

        r_mito = 1.0
        mito_ros_release_per_s[c] = 0.0
        apoptosis_per_day[c] = 0.0
        synthesis_multiplier[c] = 1.0
        if p[MITO_ON] != 0.0:
            d, mass, a = _mitochondria(np.float64(damaged_mito[c]), np.float64(mito_mass[c]), np.float64(atp[c]), drive,
                                       exposure, ros_outside, age_exposure[c], ampk, glp1, basal_ros_multiplier, p, dt)
            damaged_mito[c], mito_mass[c], atp[c] = d, mass, a
            r_mito = _mito_ros(d, p, basal_ros_multiplier, ampk)
            mito_ros_release_per_s[c] = p[ROS_RELEASE] * max(r_mito - 1.0, 0.0)
            apoptosis_per_day[c] = p[APO_MAX] * _hill(d - p[APO_THRESHOLD], p[APO_HALF], p[APO_HILL])
            synthesis_multiplier[c] = _synthesis(a, p)

        ferroptotic[c] = False
        inflammatory_release[c] = 0.0
        peroxide_multiplier[c] = 1.0
        if p[FERROPTOSIS_ON] != 0.0:
            iron, fill = _iron(np.float64(labile_iron[c]), np.float64(mito_ferritin[c]), drive, iron_field[c],
                               deferoxamine, mito_ferritin_expression, p, dt)
            ros = max(r_mito + ros_outside, 0.0)
            g, lp = _peroxidation(np.float64(gsh[c]), np.float64(lipid_peroxide[c]), iron, ros, drive, nac,
                                  ferrostatin, p, dt)
            labile_iron[c], mito_ferritin[c], gsh[c], lipid_peroxide[c] = iron, fill, g, lp
            if p[PEROXIDE_LOSS] != 0.0:
                peroxide_multiplier[c] = 1.0 / (1.0 + p[PEROXIDE_LOSS] * max(lp - 1.0, 0.0))
            if lp > ferroptosis_threshold[c]:
                ferroptotic[c] = True
                inflammatory_release[c] = p[RELEASE]
                n_dead += 1
    return n_dead


def advance(state: dict[str, np.ndarray], glucose_mM: np.ndarray | float, ros_field: np.ndarray | float,
            iron_field: np.ndarray | float, age_exposure: np.ndarray | float, dt_hours: float, params: np.ndarray,
            modifiers: Modifiers = Modifiers()) -> dict[str, np.ndarray]:
    """Advance ``state`` (columns of :data:`STATE`, in place) by one step; return the :data:`OUTPUTS` per cell.

    Per-cell inputs are as in :func:`step_redox` (arrays, or scalars for all cells).
    """
    n = len(state["labile_iron"])
    out = {name: np.zeros(n, np.bool_ if name == "ferroptotic" else np.float32) for name in OUTPUTS}
    inputs = [np.ascontiguousarray(np.broadcast_to(np.asarray(x, np.float32), n))
              for x in (glucose_mM, ros_field, iron_field, age_exposure)]
    m = modifiers
    doses = (m.deferoxamine, m.nac, m.ferrostatin, m.ampk, m.glp1, m.basal_ros_multiplier, m.mito_ferritin_expression)
    step_redox(*(state[name] for name in STATE), *inputs, float(dt_hours), *(float(x) for x in doses), params,
               *(out[name] for name in OUTPUTS))
    return out

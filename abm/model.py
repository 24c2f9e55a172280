"""BoneModel: cells remodelling the voxel world, coupled through the fields.

One :meth:`BoneModel.step` is one agent time step (``time.dt_hours``) and reads
as the biology, one line per phase. Cell state lives in arrays
(:class:`~abm.cells.store.CellStore`) updated by numba kernels; Mesa agents are
the handles (``model.agents_by_type[Osteoclast]``).
"""

from __future__ import annotations

import itertools
import math

import mesa
import numpy as np

from abm.analysis import bmd, morphometry
from abm.cells import kernels as K
from abm.cells import redox
from abm.cells.agents import AGENT_CLASSES, OsteoblastStage as OB, OsteoclastStage as OC
from abm.cells.bmu import BMULog
from abm.cells.store import CellStore
from abm.config.schema import Scenario
from abm.config.systemic import NORMAL_GLUCOSE_MM, vitamin_d_deficit
from abm.errors import UserError
from abm.fields.solver import TINY
from abm.geometry import Tissue
from abm.rules import catalogue
from abm.rules.table import compile_rules, describe
from abm.world import World, build_world

COLUMNS = {
    "osteoclast": {"credit": np.float64, "lifespan_h": np.float32, "bmu": np.int32},
    "osteoblast": {"credit": np.float64, "bmu": np.int32, "beta_catenin": np.float32, "maturity": np.float32,
                   **dict.fromkeys(redox.STATE, np.float32)},
    "bmsc": {"beta_catenin": np.float32},
    "adipocyte": {},
}

#: Time series recorded by the DataCollector (names are the run file's datasets).
METRICS = (
    "bv_tv", "porosity", "cortical_porosity", "vbmd_mg_cm3", "trabecular_vbmd_mg_cm3", "abmd_g_cm2", "tmd_mg_cm3",
    "marrow_adiposity", "n_osteoclast", "n_osteoclast_precursor", "n_osteoblast", "n_preosteoblast", "n_active_osteoblast",
    "n_lining", "n_bmsc", "n_adipocyte", "resorbed_um3_per_day", "formed_um3_per_day", "active_bmus",
    "bmu_activations", "expected_bmu_activations", "cortical_bmu_activations", "expected_cortical_bmu_activations",
    "bmu_activations_inhibited_by_glucose", "bmus_closed_short",
    "bmus_arrested_in_reversal", "osteocytes_formed",
)

#: Bone quality and the systemic inputs as the model saw them.
QUALITY_AND_INPUTS = ("matrix_age_products_au", "estrogen", "glucose_mM", "insulin_sensitivity", "pth_pg_mL")

#: Slower trabecular microarchitecture, measured every ``output.morphometry_interval_days`` (NaN between).
MICROARCHITECTURE = ("tb_th_um", "tb_sp_um", "tb_n_per_mm", "conn_d_per_mm3")

#: The random streams of BMU activation, apart from the cells' stream (``model.rng``): the integrated hazard
#: at which the next BMU opens (unit exponential gaps), the key of the race over the surface that places it
#: (:func:`~abm.cells.kernels.race_surface_sites`), the draw that high glucose may veto it with, and its
#: osteoclasts' lifespans. The n-th activation of a run uses the n-th draw of each, whatever the cells did
#: before it, so two arms of one seed open their BMUs at the same points of their own integrated hazard and,
#: where their drives are alike, at the same site (common random numbers: arms that differ only in a
#: treatment open nearly the same BMUs, and their difference is not drowned by the noise of BMU counts).
ACTIVATION_STREAMS = ("clock", "site", "glucose", "lifespan")
_ACTIVATION_ENTROPY = 0xAC71


#: Causes of cell death, counted per cell type.
#: "other": deaths that are neither, e.g. marrow adipocytes, which die necrosis-like and are cleared by
#: macrophages (crown-like structures; Cinti 2005 J Lipid Res 46:2347).
DEATH_CAUSES = ("apoptosis", "ferroptosis", "other")
#: Death counters, per type and cause; recorded as deaths per day (``deaths_osteoblast_apoptosis``).
DEATHS = tuple(f"deaths_{kind}_{cause}" for kind in COLUMNS for cause in DEATH_CAUSES)
METRICS = METRICS + QUALITY_AND_INPUTS + MICROARCHITECTURE + DEATHS


#: Units of the time series (dimensionless when absent).
UNITS = {
    "time_days": "d",
    "bv_tv": "1", "porosity": "1", "cortical_porosity": "1", "marrow_adiposity": "1",
    "vbmd_mg_cm3": "mg HA/cm^3", "trabecular_vbmd_mg_cm3": "mg HA/cm^3",
    "abmd_g_cm2": "g/cm^2",
    "tmd_mg_cm3": "mg HA/cm^3",
    "resorbed_um3_per_day": "um^3/d",
    "formed_um3_per_day": "um^3/d",
    **{name: "cells" for name in METRICS if name.startswith("n_")},
    "active_bmus": "BMUs", "bmu_activations": "BMUs (cumulative)", "expected_bmu_activations": "BMUs (cumulative)",
    "cortical_bmu_activations": "BMUs (cumulative)", "expected_cortical_bmu_activations": "BMUs (cumulative)",
    "bmu_activations_inhibited_by_glucose": "BMUs (cumulative)", "bmus_closed_short": "BMUs (cumulative)",
    "bmus_arrested_in_reversal": "BMUs (cumulative)",
    "osteocytes_formed": "cells (cumulative)",
    "matrix_age_products_au": "a.u.", "estrogen": "fraction of premenopausal", "glucose_mM": "mM",
    "insulin_sensitivity": "1", "pth_pg_mL": "pg/mL",
    "tb_th_um": "um", "tb_sp_um": "um", "tb_n_per_mm": "1/mm", "conn_d_per_mm3": "1/mm^3",
    **{name: "cells/d" for name in DEATHS},
}


class NumericalFault(UserError):
    """The run produced a NaN, a negative concentration or an agent outside the grid."""


class BoneModel(mesa.Model):
    """Bone remodelling by osteoclasts, osteoblasts, BMSCs and adipocytes.

    Args:
        scenario: validated scenario.
        seed: run seed (default ``scenario.seed``); seeds Mesa's ``rng``.
        world: prebuilt world (geometry + fields), e.g. to share one geometry.
    """

    def __init__(self, scenario: Scenario, seed: int | None = None, world: World | None = None):
        super().__init__(seed=scenario.seed if seed is None else seed)
        self.run_seed = scenario.seed if seed is None else seed
        problems = catalogue.name_problems(scenario)  # scenarios built in code skip the loader's check
        if problems:
            raise UserError(problems[0])
        self.scenario = scenario
        self.world = world if world is not None else build_world(scenario)
        self.state = self.world.state
        self.fields = self.world.fields
        self.field_stats = None  # SolveStats of the last field solve
        self._fields_changed = True
        self.redox_params = redox.params_array(scenario.redox)
        self.dt_h = scenario.time.dt_hours
        #: steps before day 0 (``time.spinup_days``): time_days runs from -spinup_days
        self.spinup_steps = int(round(scenario.time.spinup_days * 24.0 / self.dt_h))
        #: the step at which the run ends (day ``time.days``)
        self.end_step = self.spinup_steps + int(round(scenario.time.days * 24.0 / self.dt_h))
        self.systemic, self.doses = self._inputs(self.time_days)  # systemic inputs and treatment doses now, every step
        self._synthesis = np.ones(0)  # osteoblast matrix-synthesis multiplier (ATP x lipid peroxidation) of this step
        self._peroxide = np.ones(0)  # osteoblast function multiplier of sub-lethal lipid peroxidation, this step
        self._no_field = np.zeros((1, 1, 1), self.fields.values.dtype)
        self.field_every = round(scenario.time.field_dt_hours / self.dt_h)
        self.voxel_um3 = self.state.voxel_um**3
        self.field_index = {name: i for i, name in enumerate(self.fields.names)}
        self.rules = {kind: compile_rules(scenario, kind) for kind in catalogue.CELL_TYPES}
        self.rules_text = describe(scenario)
        self.stores = {kind: CellStore(cols) for kind, cols in COLUMNS.items()}
        self.signals: dict[str, np.ndarray] = {}  # per type: this step's signal matrix (catalogue.signals order)
        self.behaviour: dict[str, np.ndarray] = {}
        self._dying: dict[str, np.ndarray] = {}  # rows dying this step, per type
        self._births: list[tuple[str, np.ndarray, dict]] = []  # cells born this step
        shape = self.state.shape
        self.cavity = np.full(shape, K.NO_CAVITY, np.int32)  # BMU whose resorption opened the voxel
        self.ob_occupied = np.zeros(shape, np.uint8)  # one pre/active osteoblast per cavity voxel
        self.released = np.zeros(shape, np.float32)  # mineral resorbed since the last field solve
        self.bmus = BMULog()
        self._seed_activation_streams()
        self.totals = {
            "resorbed_voxels": 0, "formed_voxels": 0, "osteocytes": 0, "activations": 0, "expected_activations": 0.0,
            "cortical_activations": 0, "expected_cortical_activations": 0.0,
            "activations_inhibited_by_glucose": 0, "bmus_closed_short": 0, "bmus_arrested": 0,
            **{name: 0 for name in DEATHS},
        }
        self._last_totals = dict(self.totals)
        self._last_collect_day = self.time_days
        self._last_morphometry_day = -math.inf
        self.collected_days: list[float] = []  # time axis of the DataCollector's rows

        self._secretion = np.zeros_like(self.fields.source)  # cell sources of the next field solve
        self._uptake = np.zeros_like(self.fields.uptake)
        self._mineral_from_matrix_age()
        self._seed_bmscs()
        self.sense_signals(weight=1.0)
        self.solve_fields(force=True)
        #: this run's time series: METRICS, then the marrow mean of every field (``mean_<field>``)
        self.metric_names = METRICS + tuple(f"mean_{name}" for name in self.fields.names)
        self.units = {**UNITS, **{f"mean_{name}": cfg.units for name, cfg in scenario.fields.items()}}
        self.datacollector = mesa.DataCollector(model_reporters={m: _reporter(m) for m in self.metric_names})
        self._metrics: dict[str, float] = {}
        self.collect(force=True)

    # ------------------------------------------------------------------ the step
    def step(self) -> None:
        """One agent step: fields, signalling, cell stress, resorption, formation, fates, births/deaths, data."""
        self.solve_fields()
        self.sense_signals()
        self.cell_stress()
        self.resorb()
        self.form()
        self.mature_matrix()
        self.decide_fates()
        self.activate_bmus()
        self.births_and_deaths()
        self.collect()

    @property
    def time_days(self) -> float:
        """Simulated days since day 0 (negative during the spin-up)."""
        return (self.steps - self.spinup_steps) * self.dt_h / 24.0

    # ------------------------------------------------------------------ phases
    def solve_fields(self, force: bool = False) -> None:
        """Every ``field_dt_hours``: matrix and cell sources averaged over the interval, then an implicit solve.

        The systemic inputs are read every step (schedules of simulated time).
        """
        self.systemic, self.doses = self._inputs(self.time_days)
        if not force and (self.steps - 1) % self.field_every:
            return
        f = self.fields
        sig = self.scenario.signalling
        interval_s = self.scenario.time.field_dt_hours * 3600.0
        self.world.update_bone_weight()  # resorption, formation and mineralisation change diffusivity
        self._close_refilled_bmus()
        f.source[...] = self._secretion
        f.uptake[...] = self._uptake
        matrix_rankl = sig.rank.matrix_rankl_per_s * (1.0 + sig.estrogen.matrix_rankl_gain * self.estrogen_loss)
        matrix_rankl *= sig.pth.matrix_rankl_factor(self.systemic["pth_pg_mL"])  # exactly 1 at the reference PTH
        bone = self.state.label == Tissue.BONE
        f.source[self.field_index["rankl"]][bone] += matrix_rankl
        mvd = self.scenario.individual.microvascular_disease * sig.microvascular.cortical_rankl_gain
        if mvd:  # hypoxic osteocytes of a poorly perfused cortex (none: the source is left bit for bit)
            f.source[self.field_index["rankl"]][bone & self.state.cortical_mask] += matrix_rankl * mvd
        if sig.rank.matrix_opg_per_s:  # osteocytic OPG: ties marrow OPG to bone, not only to lining cells
            f.source[self.field_index["opg"]][bone] += sig.rank.matrix_opg_per_s * (
                1.0 - sig.estrogen.matrix_opg_loss * self.estrogen_loss)
        self._systemic_supply()
        tnf = self.field_index.get("tnf_alpha")
        if tnf is not None and self._tnf_neutralised > 0:  # antibody clearance on top of decay
            decay = self.scenario.fields["tnf_alpha"].decay_per_s
            f.uptake[tnf] += decay * self._tnf_neutralised / (1.0 - self._tnf_neutralised)
        f.source[self.field_index["tgf_beta"]] += self.released * (sig.tgf_beta.release_per_voxel / interval_s)
        for name, cfg in self.scenario.fields.items():  # other matrix-bound factors (e.g. iron) freed by resorption
            if cfg.matrix_release_per_voxel:
                f.source[self.field_index[name]] += self.released * (cfg.matrix_release_per_voxel / interval_s)
        for array in (self._secretion, self._uptake, self.released):
            array[...] = 0.0
        self._fields_changed = True  # check_health looks at the fields after each solve
        try:
            self.field_stats = f.steady_state() if force else f.step()
        except (ValueError, RuntimeError) as err:
            raise NumericalFault(f"step {self.steps} (day {self.time_days:g}): {err}") from None
        # The solver's resolution: it accepts a residual whose value-equivalent is below TINY in every voxel, so
        # its values may be off by TINY * sqrt(voxels) (a field decayed to ~1e-30 can hold -1e-30: round-off).
        resolution = TINY * math.sqrt(self.fields.values[0].size)
        for name, low in zip(self.field_stats.names, self.field_stats.min_before_clamp, strict=True):
            scale = float(self.fields.field(name).max())
            if low < -0.01 * scale - resolution:
                raise NumericalFault(
                    f"step {self.steps} (day {self.time_days:g}): field {name} went negative ({low:.3g}, max {scale:.3g})"
                )

    def _systemic_supply(self) -> None:
        """Fields held at a systemic level (glucose): their fixed faces and vessel exchange follow the input."""
        vessels = None
        for name, cfg in self.scenario.fields.items():
            if cfg.systemic is None:
                continue
            level = cfg.systemic_scale * self.systemic[cfg.systemic]
            if name == "tnf_alpha":  # anti-TNF antibody neutralises circulating TNF too
                level *= 1.0 - self._tnf_neutralised
            if any(v is not None for v in cfg.boundary.fixed_values().values()):
                self.fields.set_boundary_value(name, level)
            if cfg.vessel_exchange_per_s:
                vessels = self.state.label == Tissue.VESSEL if vessels is None else vessels
                i = self.field_index[name]
                self.fields.source[i][vessels] += cfg.vessel_exchange_per_s * level
                self.fields.uptake[i][vessels] += cfg.vessel_exchange_per_s

    def sense_signals(self, weight: float | None = None) -> None:
        """Cells read their voxel's fields, update beta-catenin, evaluate their rules, and secrete.

        Secretion and uptake are added to the sources of the next field solve with
        ``weight`` (default: this step's share of the field interval).
        """
        values = self.fields.values
        n_fields = values.shape[0]
        wnt = self.field_index.get("wnt")
        rank = self.scenario.signalling.rank
        wnt_cfg = self.scenario.signalling.wnt
        relax = 1.0 - math.exp(-self.dt_h / wnt_cfg.time_constant_hours)
        for kind, store in self.stores.items():
            n = len(store)
            signals = np.zeros((n, n_fields + len(catalogue.DERIVED_SIGNALS) + len(catalogue.SYSTEMIC_SIGNALS)), np.float64)
            if n:
                K.gather(values, store["pos"], signals)
            rankl, opg = signals[:, self.field_index["rankl"]], signals[:, self.field_index["opg"]]
            signals[:, n_fields] = K.rank_occupancy(rankl, opg, rank.rankl_half_occupancy, rank.opg_binding_constant)
            if "beta_catenin" in store.columns:
                target = 0.0 if wnt is None else signals[:, wnt] / (wnt_cfg.wnt_half_activation + signals[:, wnt])
                store["beta_catenin"][:] += (target - store["beta_catenin"]) * relax
                signals[:, n_fields + 1] = store["beta_catenin"]
            if n:
                age = np.zeros(n, np.float32)
                K.neighbour_matrix_mean(store["pos"], self.state.label, self.state.age_products_au, age)
                signals[:, n_fields + catalogue.DERIVED_SIGNALS.index("matrix_age_products")] = age
            self._systemic_signals(signals, n_fields + len(catalogue.DERIVED_SIGNALS))
            self.signals[kind] = signals
            self.behaviour[kind] = self.rules[kind].evaluate(signals)
            self._dying[kind] = np.zeros(n, bool)
            self._deposit(kind, self.dt_h / self.scenario.time.field_dt_hours if weight is None else weight)

    def _inputs(self, days: float) -> tuple[dict[str, float], dict[str, float]]:
        """Systemic inputs as the bone sees them (treatments and the individual applied), and the doses."""
        sc = self.scenario
        now = sc.systemic.at(days)
        doses = sc.treatments.at(days)
        fx, person = sc.treatment_effects, sc.individual
        now["estrogen"] = min(1.5, now["estrogen"] + doses["raloxifene"] * fx.raloxifene_estrogen_equivalent
                              + doses["hormone_therapy"] * fx.hormone_therapy_estrogen_equivalent)
        now["vitamin_d_nM"] = (now["vitamin_d_nM"] + doses["vitamin_d"] * fx.vitamin_d_nM_per_dose) * person.vitamin_d_response
        # secondary hyperparathyroidism: below 75 nM 25(OH)D the PTH the bone sees rises (exactly as given above it)
        now["pth_pg_mL"] = sc.signalling.pth.serum_pg_mL(now["pth_pg_mL"], vitamin_d_deficit(now["vitamin_d_nM"]))
        now["fat_inflammation"] += person.fat_inflammation_from_bmi
        return now, doses

    def _systemic_signals(self, signals: np.ndarray, first: int) -> None:
        """Fill the systemic signal columns (see catalogue.SYSTEMIC_SIGNALS) from today's inputs."""
        now = self.systemic
        glucose = self.field_index.get("glucose")
        local = signals[:, glucose] if glucose is not None else now["glucose_mM"]
        signals[:, first] = max(0.0, 1.0 - now["estrogen"])
        signals[:, first + 1] = max(0.0, 1.0 - now["insulin_sensitivity"])
        signals[:, first + 2] = np.maximum(np.asarray(local, np.float64) - NORMAL_GLUCOSE_MM, 0.0)
        signals[:, first + 3] = now["fat_inflammation"]
        signals[:, first + 4] = vitamin_d_deficit(now["vitamin_d_nM"])

    @property
    def _tnf_neutralised(self) -> float:
        """Fraction of TNF-alpha an anti-TNF dose neutralises (capped below 1)."""
        return min(0.99, self.doses["anti_tnf"] * self.scenario.treatment_effects.anti_tnf_neutralised)

    @property
    def estrogen_loss(self) -> float:
        return max(0.0, 1.0 - self.systemic["estrogen"])

    def _deposit(self, kind: str, weight: float) -> None:
        """Add a cell type's secretion and uptake, times ``weight``, to the next solve's sources."""
        store = self.stores[kind]
        cfg = getattr(self.scenario.cells, kind)
        if not len(store):
            return
        if cfg.secretion_per_s:
            names = [f"secretion_per_s.{name}" for name in cfg.secretion_per_s]
            rates = self.behaviour[kind][:, [self.rules[kind].index(n) for n in names]] * weight
            idx = np.array([self.field_index[name] for name in cfg.secretion_per_s], np.int64)
            K.scatter(self._secretion, store["pos"], np.ascontiguousarray(rates), idx)
        if cfg.uptake_per_s:
            rates = np.tile(np.array(list(cfg.uptake_per_s.values())) * weight, (len(store), 1))
            idx = np.array([self.field_index[name] for name in cfg.uptake_per_s], np.int64)
            K.scatter(self._uptake, store["pos"], rates, idx)

    def cell_stress(self) -> None:
        """Osteoblasts' iron, GSH, lipid peroxide and mitochondria advance (numba); ferroptosis kills.

        Reads the signals :meth:`sense_signals` sampled this step (local glucose, ROS,
        iron and the AGE of the adjacent matrix).
        """
        store = self.stores["osteoblast"]
        n = len(store)
        self._synthesis = np.ones(n)
        self._peroxide = np.ones(n)
        if not n:
            return
        state = {name: store[name] for name in redox.STATE}
        pos = store["pos"]
        signals = self.signals["osteoblast"]

        def local(name: str, default: float) -> np.ndarray | float:
            i = self.field_index.get(name)
            return signals[:, i] if i is not None else default

        age = signals[:, len(self.fields.names) + catalogue.DERIVED_SIGNALS.index("matrix_age_products")]
        doses = self.doses
        modifiers = redox.Modifiers(
            deferoxamine=doses["deferoxamine"], nac=doses["nac"], ferrostatin=doses["ferrostatin"],
            ampk=doses["metformin"], glp1=doses["glp1"],
            basal_ros_multiplier=self.scenario.individual.basal_ros_multiplier(self.time_days),
        )
        out = redox.advance(state, local("glucose", self.systemic["glucose_mM"]), local("ros", 0.0),
                            local("iron", 0.0), age, self.dt_h, self.redox_params, modifiers)
        self._peroxide = np.asarray(out["peroxide_multiplier"], np.float64)
        self._synthesis = np.asarray(out["synthesis_multiplier"], np.float64) * self._peroxide
        weight = self.dt_h / self.scenario.time.field_dt_hours
        ros = self.field_index.get("ros")
        if ros is not None:
            K.scatter(self._secretion, pos, np.ascontiguousarray(out["mito_ros_release_per_s"][:, None] * weight,
                                                                  dtype=np.float64), np.array([ros], np.int64))
        dead = np.asarray(out["ferroptotic"], bool)
        if dead.any():
            interval_s = self.scenario.time.field_dt_hours * 3600.0
            idx = [self.field_index[f] for f in self.scenario.redox.ferroptosis.inflammatory_fields]  # names checked
            if idx:
                amount = np.repeat(out["inflammatory_release"][dead][:, None] / interval_s, len(idx), axis=1)
                K.scatter(self._secretion, np.ascontiguousarray(pos[dead]), np.ascontiguousarray(amount, np.float64),
                          np.array(idx, np.int64))
            self._die("osteoblast", dead, "ferroptosis")
        u = self.rng.random(n) if np.any(out["apoptosis_per_day"] > 0) else None
        if u is not None:  # mitochondrial (Bax/cytochrome c) apoptosis
            self._die("osteoblast", u < 1 - np.exp(-out["apoptosis_per_day"] * self.dt_h / 24.0), "apoptosis")

    def resorb(self) -> None:
        """Resorbing osteoclasts erode adjacent mineralised bone into their BMU's cavity."""
        store = self.stores["osteoclast"]
        if not len(store):
            return
        cfg = self.scenario.cells.osteoclast
        erosion = self.behaviour["osteoclast"][:, self.rules["osteoclast"].index("erosion_um_per_day")]
        rate = erosion / 24.0 * self.dt_h * cfg.footprint_um2 / self.voxel_um3
        s = self.state
        n, _ = K.resorb(
            store["pos"], store["stage"] == OC.RESORBING, store["credit"], rate, store["bmu"],
            s.label, s.mineral, s.matrix_age_days, s.age_products_au, self.cavity, self.released,
            max(1, round(cfg.cavity_depth_um / s.voxel_um)), self.rng.random(len(store)), self.bmus.resorbed_voxels,
        )
        self.totals["resorbed_voxels"] += n

    def form(self) -> None:
        """Active osteoblasts lay osteoid into the cavity; some are buried as osteocytes."""
        store = self.stores["osteoblast"]
        if not len(store):
            return
        cfg = self.scenario.cells.osteoblast
        rate = self.apposition_um_per_day() / 24.0 * self.dt_h / self.state.voxel_um
        fate = np.zeros(len(store), np.int8)
        s = self.state
        formed = K.form(
            store["pos"], store["stage"] == OB.ACTIVE, store["credit"], rate, store["bmu"], s.label, s.mineral,
            s.matrix_age_days, s.age_products_au, self.cavity, self.ob_occupied, cfg.osteocyte_fraction,
            max(1, round(cfg.relocation_um / s.voxel_um)), self.rng.random(len(store)), fate,
            self.bmus.formed_voxels, self.bmu_quota(), self._bmu_open(),
        )
        self.totals["formed_voxels"] += formed
        lining = fate == K.FATE_LINING
        store["stage"][lining] = OB.LINING
        store["stage_h"][lining] = 0.0
        buried = fate == K.FATE_OSTEOCYTE
        self.totals["osteocytes"] += int(buried.sum())
        self._dying["osteoblast"] |= buried

    def apposition_um_per_day(self) -> np.ndarray:
        """Per osteoblast: matrix apposition rate now (rules x ATP-limited synthesis x sub-lethal lipid peroxidation
        x teriparatide x cortical hypoxia of microvascular disease), um/day."""
        apposition = self.behaviour["osteoblast"][:, self.rules["osteoblast"].index("apposition_um_per_day")]
        apposition = apposition * self._synthesis * (
            1.0 + self.doses["teriparatide"] * self.scenario.treatment_effects.teriparatide_apposition_gain)
        hypoxic = self.scenario.signalling.microvascular.cortical_apposition_loss
        hypoxic *= self.scenario.individual.microvascular_disease
        if hypoxic:  # without the disease the rate is untouched, bit for bit
            pos = self.stores["osteoblast"]["pos"]
            cortical = self.state.cortical_mask[pos[:, 0], pos[:, 1], pos[:, 2]]
            apposition = apposition * np.where(cortical, 1.0 - hypoxic, 1.0)
        return apposition

    def mature_matrix(self) -> None:
        """Osteoid mineralises after its lag; bone mineral approaches full (secondary mineralisation)."""
        m = self.scenario.mineralisation
        g = self.scenario.signalling.glycation
        dt_days = self.dt_h / 24.0
        glucose = self.field_index.get("glucose")
        K.mature_matrix(
            self.state.label, self.state.mineral, self.state.matrix_age_days, np.float32(dt_days),
            np.float32(m.lag_days * (1.0 + vitamin_d_deficit(self.systemic["vitamin_d_nM"]))),
            np.float32(m.primary_fraction),
            np.float32(math.exp(-dt_days / m.secondary_time_constant_days)),
            self.state.age_products_au, self.fields.values[glucose] if glucose is not None else self._no_field,
            np.float32(self.systemic["glucose_mM"] if glucose is None else -1.0),
            np.float32(g.age_per_day * dt_days), np.float32(g.glucose_gain_per_mM), np.float32(NORMAL_GLUCOSE_MM),
        )

    def decide_fates(self) -> None:
        """Ageing, differentiation, commitment, proliferation and death of every cell type."""
        for store in self.stores.values():
            store["age_h"][:] += self.dt_h
            store["stage_h"][:] += self.dt_h
        self._osteoclast_fates()
        self._osteoblast_fates()
        self._bmsc_fates()
        self._adipocyte_fates()

    def births_and_deaths(self) -> None:
        """Remove the cells that died this step, then add the cells born this step."""
        for kind, dying in self._dying.items():
            self._remove(kind, np.flatnonzero(dying))
        self._dying = {}
        for kind, pos, values in self._births:
            self._add(kind, pos, **values)
        self._births = []

    def activate_bmus(self) -> None:
        """At each field solve: new BMUs where RANKL/OPG drive activation on exposed bone surface."""
        if (self.steps - 1) % self.field_every:
            return
        cfg = self.scenario.cells.osteoclast
        rank = self.scenario.signalling.rank
        label = self.state.label
        rankl = self.fields.field("rankl")
        opg = self.fields.field("opg")
        slab = np.zeros(label.shape[0], np.float64)
        in_cortex = np.zeros(label.shape[0], np.float64)  # the share of BMUs whose site is cortical (BMU log's split)
        K.surface_drive(label, rankl, opg, rank.rankl_half_occupancy, rank.opg_binding_constant,
                        self.state.cortical_mask, slab, in_cortex)
        drive = float(slab.sum())  # exposed faces x RANK occupancy
        face_mm2 = (self.state.voxel_um / 1000.0) ** 2
        per_face_per_h = cfg.activation_per_mm2_per_year * face_mm2 / (365.25 * 24.0)
        expected = drive * per_face_per_h * self.scenario.time.field_dt_hours
        alendronate = self.doses["alendronate"] * self.scenario.treatment_effects.alendronate_activation_reduction
        not_blocked = max(0.0, 1.0 - alendronate)  # the share of activations alendronate lets through
        expected *= not_blocked
        self.totals["expected_activations"] += expected
        self.totals["expected_cortical_activations"] += (
            float(in_cortex.sum()) * per_face_per_h * self.scenario.time.field_dt_hours * not_blocked)
        k = self._activations_due(expected)
        if k == 0:
            return
        keys = self.activation_streams["site"].integers(0, 2**63, size=k, dtype=np.uint64)  # the n-th BMU's race
        sites = np.full((k, 3), -1, np.int32)
        K.race_surface_sites(label, rankl, opg, rank.rankl_half_occupancy, rank.opg_binding_constant, keys, sites)
        sites = self._glucose_inhibits_osteoclastogenesis(sites[sites[:, 0] >= 0])
        for site in sites:
            self.open_bmu(site)
            self.totals["activations"] += 1
            self.totals["cortical_activations"] += int(self.state.cortical_mask[tuple(site)])

    def _activations_due(self, expected: float) -> int:
        """How many BMUs open now: the unit-exponential gaps of the clock stream passed by the integrated hazard
        (``expected``, BMUs due in this interval). A Poisson process of the hazard by the random time change, so
        the count of an interval is a Poisson draw of ``expected``, as it would be drawn directly."""
        self._activation_clock -= expected
        k = 0
        while self._activation_clock <= 0.0:
            k += 1
            self._activation_clock += float(self.activation_streams["clock"].exponential())
        return k

    def _seed_activation_streams(self, steps: int = 0) -> None:
        """Fresh activation streams of this run's seed (``steps``: a checkpoint that predates them resumes on
        streams of its own step) and the integrated hazard due before the first activation."""
        self.activation_streams = {
            name: np.random.default_rng([self.run_seed, _ACTIVATION_ENTROPY, i, steps])
            for i, name in enumerate(ACTIVATION_STREAMS)
        }
        self._activation_clock = float(self.activation_streams["clock"].exponential())

    def open_bmu(self, site: np.ndarray) -> int:
        """Open a BMU at the marrow voxel ``site`` beside the bone surface and return its id: its osteoclast
        precursors (lifespans drawn, longer without estrogen) are born at the end of this step. The activation
        hazard opens BMUs with it; scripts/trace_bmu_teams.py opens them by hand."""
        cfg = self.scenario.cells.osteoclast
        bmu = self.bmus.open(self.time_days, site)
        n = cfg.osteoclasts_per_bmu
        lifespan = self.activation_streams["lifespan"].normal(cfg.lifespan_days, cfg.lifespan_sd_days, n)
        lifespan = lifespan.clip(1.0, None) * 24.0
        lifespan *= 1.0 + self.scenario.signalling.estrogen.osteoclast_lifespan_gain * self.estrogen_loss
        self._births.append(("osteoclast", np.tile(site, (n, 1)), {"stage": OC.PRECURSOR, "lifespan_h": lifespan, "bmu": bmu}))
        return bmu

    def _glucose_inhibits_osteoclastogenesis(self, sites: np.ndarray) -> np.ndarray:
        """The activation sites that survive high local glucose (see HyperglycaemiaModule)."""
        hg = self.scenario.signalling.hyperglycaemia
        glucose = self.field_index.get("glucose")
        if glucose is None:
            excess = np.full(len(sites), max(self.systemic["glucose_mM"] - NORMAL_GLUCOSE_MM, 0.0))
        else:
            g = self.fields.values[glucose][sites[:, 0], sites[:, 1], sites[:, 2]].astype(np.float64)
            excess = np.maximum(g - NORMAL_GLUCOSE_MM, 0.0)
        # one draw per candidate whatever the glucose, so the n-th activation of every arm meets the same draw
        u = self.activation_streams["glucose"].random(len(sites))
        if not len(sites) or hg.osteoclastogenesis_inhibition == 0 or not excess.any():
            return sites
        keep = u >= hg.inhibited_fraction(excess)
        self.totals["activations_inhibited_by_glucose"] += int(np.count_nonzero(~keep))
        return sites[keep]

    def collect(self, force: bool = False) -> None:
        """Record the time series every ``output.interval_days`` (or now, with ``force``), from day 0.

        The spin-up is not recorded: at day 0 the counters restart from zero and the first row is written.
        """
        if self.steps < self.spinup_steps:
            return
        if self.steps == self.spinup_steps and not self.collected_days:
            self.totals = dict.fromkeys(self.totals, 0)
            self.totals["expected_activations"] = self.totals["expected_cortical_activations"] = 0.0
            self._last_totals = dict(self.totals)
            self._last_collect_day = self.time_days
            force = True
        if not force and self.time_days - self._last_collect_day + 1e-9 < self.scenario.output.interval_days:
            return
        elapsed = max(self.time_days - self._last_collect_day, 1e-12)
        self._metrics = self.metrics(elapsed)
        self._last_collect_day = self.time_days
        self._last_totals = dict(self.totals)
        self.collected_days.append(self.time_days)
        self.datacollector.collect(self)

    # ------------------------------------------------------------------ fates
    def _osteoclast_fates(self) -> None:
        store = self.stores["osteoclast"]
        if not len(store):
            return
        cfg = self.scenario.cells.osteoclast
        u = self.rng.random((len(store), 2))
        fuse = (store["stage"] == OC.PRECURSOR) & (u[:, 0] < 1 - math.exp(-self.dt_h / (cfg.fusion_days * 24)))
        store["stage"][fuse] = OC.RESORBING
        store["stage_h"][fuse] = 0.0
        extra = self.doses["alendronate"] * self.scenario.treatment_effects.alendronate_osteoclast_apoptosis_per_day
        apoptosis = self._hazard("osteoclast", "apoptosis_per_day", u[:, 1], extra)
        spent = (store["stage"] == OC.RESORBING) & (store["stage_h"] >= store["lifespan_h"])
        self.bmus.note_resorbing(store["bmu"][store["stage"] == OC.RESORBING], self.time_days)
        self._die("osteoclast", apoptosis | spent, "apoptosis")  # spent osteoclasts apoptose too

    def _osteoblast_fates(self) -> None:
        store = self.stores["osteoblast"]
        if not len(store):
            return
        cfg = self.scenario.cells.osteoblast
        rules = self.rules["osteoblast"]
        u = self.rng.random(len(store))
        stage = store["stage"]
        # maturation clock: runs at the (rule-modulated) differentiation rate, so the
        # pre-osteoblast becomes active after differentiation_days at the base rate and
        # waits while signals (e.g. TGF-beta during resorption) hold differentiation back
        diff = self.behaviour["osteoblast"][:, rules.index("differentiation_per_day")]
        pre = stage == OB.PRE
        if cfg.wait_for_resorption:  # reversal: maturation starts once the BMU's osteoclasts are gone
            pre &= ~self._bmu_resorbing()[store["bmu"]]
        store["maturity"][pre] += diff[pre] * self._peroxide[pre] * self.dt_h / 24.0  # lipid peroxidation slows it
        start = pre & (store["maturity"] >= 1.0)
        stage[start] = OB.ACTIVE
        store["stage_h"][start] = 0.0
        retire = (stage == OB.ACTIVE) & (store["stage_h"] >= cfg.active_lifespan_days * 24.0)
        self._free(store["pos"][retire])
        stage[retire] = OB.LINING
        store["stage_h"][retire] = 0.0
        self.bmus.note_forming(store["bmu"][stage == OB.ACTIVE], self.time_days)
        rate = np.where(
            stage == OB.LINING, cfg.lining_apoptosis_per_day,
            self.behaviour["osteoblast"][:, rules.index("apoptosis_per_day")],
        )
        self._die("osteoblast", u < 1 - np.exp(-rate * self.dt_h / 24.0), "apoptosis")

    def _bmsc_fates(self) -> None:
        store = self.stores["bmsc"]
        if not len(store):
            return
        cfg = self.scenario.cells.bmsc
        rules = self.rules["bmsc"]
        beh = self.behaviour["bmsc"]
        n = len(store)
        u = self.rng.random((n, 4))
        per_step = self.dt_h / 24.0
        capacity = cfg.capacity_per_mm3 * self._marrow_mm3
        crowding = max(0.0, 1.0 - n / capacity)
        divide = u[:, 0] < 1 - np.exp(-beh[:, rules.index("proliferation_per_day")] * crowding * per_step)
        pth = 1.0 + self.doses["teriparatide"] * self.scenario.treatment_effects.teriparatide_commitment_gain
        commit_ob = u[:, 1] < 1 - np.exp(-beh[:, rules.index("osteoblast_commitment_per_day")] * pth * per_step)
        commit_ad = u[:, 2] < 1 - np.exp(-beh[:, rules.index("adipocyte_commitment_per_day")] * per_step)
        dead = u[:, 3] < 1 - np.exp(-beh[:, rules.index("apoptosis_per_day")] * per_step)
        commit_ad &= ~dead
        commit_ob &= ~dead & ~commit_ad
        divide &= ~dead & ~commit_ad & ~commit_ob
        self._recruit_preosteoblasts(store["pos"][commit_ob])
        # symmetric division: the daughter starts in the parent's voxel and walks away
        self._births.append(("bmsc", store["pos"][divide].copy(), {"beta_catenin": store["beta_catenin"][divide].copy()}))
        self._become_adipocytes(commit_ad)
        self._die("bmsc", dead, "apoptosis")
        speed = cfg.migration_um_per_hour * self.dt_h / self.state.voxel_um
        K.random_walk(store["pos"], np.full(len(store), min(speed, 1.0)), self.state.label, self.rng.random((len(store), 2)))

    def _adipocyte_fates(self) -> None:
        store = self.stores["adipocyte"]
        if not len(store):
            return
        dead = self._hazard("adipocyte", "apoptosis_per_day", self.rng.random(len(store)))
        pos = store["pos"][dead]
        self.state.label[pos[:, 0], pos[:, 1], pos[:, 2]] = Tissue.MARROW
        self._die("adipocyte", dead, "other")

    # ------------------------------------------------------------------ helpers
    def _die(self, kind: str, dead: np.ndarray, cause: str) -> None:
        """Mark cells as dying this step and count them by type and cause."""
        self.totals[f"deaths_{kind}_{cause}"] += int(np.count_nonzero(dead & ~self._dying[kind]))
        self._dying[kind] |= dead

    def _hazard(self, kind: str, behaviour: str, u: np.ndarray, extra_per_day: float = 0.0) -> np.ndarray:
        rate = self.behaviour[kind][:, self.rules[kind].index(behaviour)] + extra_per_day
        return u < 1 - np.exp(-rate * self.dt_h / 24.0)

    def _recruit_preosteoblasts(self, origins: np.ndarray) -> None:
        """Committed BMSCs divide asymmetrically; the daughter goes to the nearest free cavity voxel."""
        if not len(origins):
            return
        cfg = self.scenario.cells.osteoblast
        radius = max(1, round(cfg.recruitment_radius_um / self.state.voxel_um))
        target = np.zeros((len(origins), 3), np.int32)
        bmu = np.zeros(len(origins), np.int32)
        accepting = ((self.bmus.formed_voxels < self.bmu_quota()) & self._bmu_recruiting()).astype(np.uint8)
        K.place_preosteoblasts(
            np.ascontiguousarray(origins), radius, self.state.label, self.cavity, self.ob_occupied, accepting, target, bmu
        )
        placed = bmu >= 0
        loss = self.scenario.signalling.microvascular.cortical_recruitment_loss
        loss *= self.scenario.individual.microvascular_disease
        if loss and placed.any():  # osteoprogenitors come with the canal capillaries: fewer reach a cortical BMU
            site = self.bmus.site[bmu[placed]]
            lost = np.zeros_like(placed)
            lost[placed] = self.state.cortical_mask[tuple(site.T)] & (self.rng.random(len(site)) < loss)
            self._free(target[lost])
            placed &= ~lost
        self._births.append(("osteoblast", target[placed], {"stage": OB.PRE, "bmu": bmu[placed], "redox": True}))

    def _become_adipocytes(self, commit: np.ndarray) -> None:
        """Committed BMSCs become adipocytes filling their (marrow) voxel."""
        pos = self.stores["bmsc"]["pos"]
        commit = commit & (self.state.label[pos[:, 0], pos[:, 1], pos[:, 2]] == Tissue.MARROW)
        # two cells in one voxel: the first in row order takes it
        flat = np.ravel_multi_index(pos.T, self.state.shape)
        first = np.zeros_like(commit)
        first[np.unique(np.where(commit, flat, -1), return_index=True)[1]] = True
        commit &= first
        new = pos[commit].copy()
        self.state.label[new[:, 0], new[:, 1], new[:, 2]] = Tissue.ADIPOSE
        self._births.append(("adipocyte", new, {}))
        self._dying["bmsc"] |= commit

    def _add(self, kind: str, pos: np.ndarray, **values) -> None:
        if not len(pos):
            return
        handles = list(AGENT_CLASSES[kind].create_agents(self, len(pos)))
        values["uid"] = np.fromiter((h.unique_id for h in handles), np.int64, len(handles))
        if values.pop("redox", False):  # healthy redox state; thresholds hashed from (seed, uid), no RNG draw
            values.update(redox.initial_state(len(pos), self.scenario.redox))
            values["ferroptosis_threshold"] *= np.exp(
                self.scenario.redox.ferroptosis.threshold_spread * _hashed_normal(self.run_seed, values["uid"])
            ).astype(np.float32)
        self.stores[kind].add(np.asarray(pos, np.int32), handles, **values)

    def _remove(self, kind: str, rows: np.ndarray) -> None:
        if not len(rows):
            return
        store = self.stores[kind]
        if kind == "osteoblast":  # pre-osteoblasts and active osteoblasts hold a cavity voxel
            self._free(store["pos"][rows][store["stage"][rows] != OB.LINING])
        for handle in store.remove(rows):
            handle.remove()

    def _bmu_resorbing(self) -> np.ndarray:
        """Per BMU: True while any of its osteoclasts (precursor or resorbing) lives."""
        alive = np.zeros(self.bmus.n, bool)
        alive[self.stores["osteoclast"]["bmu"]] = True
        return alive

    def _bmu_recruiting(self) -> np.ndarray:
        """Per BMU: True while it takes new pre-osteoblasts (resorbing, or within the recruitment window after)."""
        cfg = self.scenario.cells.osteoblast
        if not cfg.recruitment_closes:
            return np.ones(self.bmus.n, bool)
        ended = np.where(np.isnan(self.bmus["resorb_last"]), self.bmus["opened"], self.bmus["resorb_last"])
        return self._bmu_resorbing() | (self.time_days <= ended + cfg.recruitment_window_days)

    def _bmu_team(self) -> np.ndarray:
        """Per BMU: True while it has a pre-osteoblast or an active osteoblast."""
        ob = self.stores["osteoblast"]
        team = np.zeros(self.bmus.n, bool)
        team[ob["bmu"][(ob["stage"] != OB.LINING) & (ob["bmu"] >= 0)]] = True
        return team

    def bmu_quota(self) -> np.ndarray:
        """Per BMU (index of ``self.bmus``): the voxels its osteoblasts may form now, the refill fraction of
        what it resorbed (lowered by ``signalling.estrogen.refill_loss`` at the current estrogen loss).
        A BMU that closes with fewer formed voxels closed short (its team ran out)."""
        refill = self.scenario.cells.osteoblast.refill_fraction
        refill *= 1.0 - self.scenario.signalling.estrogen.refill_loss * self.estrogen_loss
        return refill * self.bmus.resorbed_voxels

    def _bmu_open(self) -> np.ndarray:
        """Per BMU: 1 where osteoblasts may move into its cavity (refill not done; resorption over if waiting)."""
        open_ = self.bmus.formed_voxels < self.bmu_quota()
        if self.scenario.cells.osteoblast.wait_for_resorption:
            open_ &= ~self._bmu_resorbing()
        return open_.astype(np.uint8)

    def _close_refilled_bmus(self) -> None:
        """Cavity left by BMUs that refilled their share, or whose recruitment window passed and whose
        osteoblast team is gone (closed short: an unfilled pore), becomes plain marrow."""
        refilled = self.bmus.formed_voxels >= self.bmu_quota()
        short = ~refilled & ~self._bmu_recruiting() & ~self._bmu_team()
        done = (refilled | short) & ~self._bmu_resorbing() & (self.bmus.resorbed_voxels > 0)
        closed = self.bmus["closed"]
        newly = done & np.isnan(closed)
        closed[newly] = self.time_days
        self.totals["bmus_closed_short"] += int(np.count_nonzero(newly & short))
        self.totals["bmus_arrested"] += int(np.count_nonzero(newly & short & (self.bmus.formed_voxels == 0)))
        done = newly
        flat = self.cavity.reshape(-1)
        idx = np.flatnonzero(flat != K.NO_CAVITY)
        if len(idx) and done.any():
            flat[idx[done[flat[idx]]]] = K.NO_CAVITY

    def _free(self, pos: np.ndarray) -> None:
        self.ob_occupied[pos[:, 0], pos[:, 1], pos[:, 2]] = 0

    @property
    def _marrow_mm3(self) -> float:
        return float(np.count_nonzero(self.state.label == Tissue.MARROW)) * self.voxel_um3 * 1e-9

    def _mineral_from_matrix_age(self) -> None:
        """Initial mineral and AGE content follow the model's own kinetics from each voxel's matrix age."""
        m = self.scenario.mineralisation
        s = self.state
        bone = s.label == Tissue.BONE
        young = bone & (s.matrix_age_days < m.lag_days)
        s.label[young] = Tissue.OSTEOID
        s.mineral[young] = 0.0
        old = bone & ~young
        elapsed = s.matrix_age_days[old] - m.lag_days
        s.mineral[old] = 1.0 - (1.0 - m.primary_fraction) * np.exp(-elapsed / m.secondary_time_constant_days)
        # AGEs accumulated at the initial glucose over each voxel's age (removed only by resorption)
        g = self.scenario.signalling.glycation
        excess = max(self.systemic["glucose_mM"] - NORMAL_GLUCOSE_MM, 0.0)
        s.age_products_au[bone] = g.age_per_day * (1.0 + g.glucose_gain_per_mM * excess) * s.matrix_age_days[bone]
        self.world.update_bone_weight()

    def _seed_bmscs(self) -> None:
        cfg = self.scenario.cells.bmsc
        marrow = np.argwhere(self.state.label == Tissue.MARROW)
        n = min(len(marrow), int(round(cfg.initial_per_mm3 * self._marrow_mm3)))
        pos = marrow[self.rng.choice(len(marrow), n, replace=False)] if n else marrow[:0]
        self._add("bmsc", pos)

    # ------------------------------------------------------------------ health, snapshots, checkpoints
    def check_health(self) -> None:
        """Raise :class:`NumericalFault` naming the field or agent if the state is not sound.

        Fields change only when they are solved, so they are scanned after a solve;
        cell positions are checked every call.
        """
        values = self.fields.values
        for i, name in enumerate(self.fields.names if self._fields_changed else ()):
            bad = ~np.isfinite(values[i])
            if bad.any():
                where = tuple(int(v) for v in np.argwhere(bad)[0])
                raise NumericalFault(f"step {self.steps} (day {self.time_days:g}): field {name} is not finite at voxel {where}")
        self._fields_changed = False
        shape = np.array(self.state.shape)
        for kind, store in self.stores.items():
            pos = store["pos"]
            outside = np.flatnonzero(((pos < 0) | (pos >= shape)).any(axis=1))
            if len(outside):
                row = int(outside[0])
                raise NumericalFault(
                    f"step {self.steps} (day {self.time_days:g}): {kind} {int(store['uid'][row])} is outside the"
                    f" grid at {tuple(int(v) for v in pos[row])} (grid {tuple(int(v) for v in shape)})"
                )

    def snapshot(self) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray], dict[str, dict[str, np.ndarray]]]:
        """(voxel arrays, fields, agent tables) now, as the run file stores them."""
        s = self.state
        voxels = {"label": s.label, "mineral": s.mineral, "matrix_age_days": s.matrix_age_days,
                  "age_products_au": s.age_products_au}
        fields = {name: self.fields.field(name) for name in self.fields.names}
        return voxels, fields, {kind: store.table() for kind, store in self.stores.items()}

    def agent_columns(self) -> dict[str, dict[str, np.dtype]]:
        """Column dtypes of the agent tables of :meth:`snapshot`."""
        return {kind: store.table_dtypes() for kind, store in self.stores.items()}

    def checkpoint(self) -> tuple[dict[str, np.ndarray], dict]:
        """Everything needed to continue this run bit for bit: (arrays, JSON-able metadata)."""
        s = self.state
        arrays = {
            "state/label": s.label, "state/mineral": s.mineral, "state/matrix_age_days": s.matrix_age_days,
            "state/age_products_au": s.age_products_au, "fields/values": self.fields.values,
            "pending/secretion": self._secretion, "pending/uptake": self._uptake, "pending/released": self.released,
            "cavity": self.cavity, "ob_occupied": self.ob_occupied,
            "bmus/site": self.bmus.site[: self.bmus.n], "bmus/resorbed": self.bmus.resorbed_voxels,
            "bmus/formed": self.bmus.formed_voxels,
            "timeseries/time_days": np.asarray(self.collected_days, np.float64),
        }
        arrays.update({f"bmus/{name}": self.bmus[name] for name in self.bmus.columns})
        arrays.update({f"timeseries/{m}": np.asarray(v, np.float64) for m, v in self.datacollector.model_vars.items()})
        for kind, store in self.stores.items():
            arrays.update({f"cells/{kind}/{name}": values for name, values in store.state().items()})
        ids = mesa.Agent._ids[self]
        next_uid = next(ids)
        mesa.Agent._ids[self] = itertools.count(next_uid)
        version, internal, gauss = self.random.getstate()
        meta = {
            "steps": self.steps, "rng": self.rng.bit_generator.state, "random": [version, list(internal), gauss],
            "totals": self.totals, "last_totals": self._last_totals, "last_collect_day": self._last_collect_day,
            "last_morphometry_day": self._last_morphometry_day,
            "metrics": self._metrics, "next_uid": next_uid, "bmus": self.bmus.n, "seed": self.run_seed,
            "activation": {"clock": self._activation_clock,
                           "streams": {name: g.bit_generator.state for name, g in self.activation_streams.items()}},
        }
        return arrays, meta

    @classmethod
    def from_checkpoint(cls, scenario: Scenario, arrays: dict[str, np.ndarray], meta: dict) -> BoneModel:
        """A model of ``scenario`` continuing from :meth:`checkpoint` output."""
        model = cls(scenario, seed=meta.get("seed"))
        model._restore(arrays, meta)
        return model

    def _restore(self, arrays: dict[str, np.ndarray], meta: dict) -> None:
        s = self.state
        for name in ("label", "mineral", "matrix_age_days", "age_products_au"):
            getattr(s, name)[...] = arrays[f"state/{name}"]
        self.fields.values[...] = arrays["fields/values"]
        self._secretion[...] = arrays["pending/secretion"]
        self._uptake[...] = arrays["pending/uptake"]
        self.released[...] = arrays["pending/released"]
        self.cavity[...] = arrays["cavity"]
        self.ob_occupied[...] = arrays["ob_occupied"]
        self.bmus.restore({name: arrays[f"bmus/{name}"] for name in self.bmus.columns if f"bmus/{name}" in arrays},
                          arrays["bmus/site"],
                          arrays["bmus/resorbed"], arrays["bmus/formed"])
        for kind, store in self.stores.items():
            for handle in store.remove(np.arange(len(store))):
                handle.remove()
            columns = {name: arrays[f"cells/{kind}/{name}"] for name in store.columns}
            handles = list(AGENT_CLASSES[kind].create_agents(self, len(columns["pos"])))
            for handle, uid in zip(handles, columns["uid"], strict=True):
                handle.unique_id = int(uid)
            store.add(columns.pop("pos"), handles, **columns)
        mesa.Agent._ids[self] = itertools.count(meta["next_uid"])
        self.steps = meta["steps"]
        self.rng.bit_generator.state = meta["rng"]
        if "activation" in meta:
            for name, generator in self.activation_streams.items():
                generator.bit_generator.state = meta["activation"]["streams"][name]
            self._activation_clock = float(meta["activation"]["clock"])
        else:  # written before the activation streams: continue on streams of its step, deterministically
            self._seed_activation_streams(int(meta["steps"]))
        version, internal, gauss = meta["random"]
        self.random.setstate((version, tuple(internal), gauss))
        self.totals = {**self.totals, **meta["totals"]}  # counters newer than the checkpoint start at 0
        self._last_totals = {**self.totals, **meta["last_totals"]}
        self._last_collect_day = meta["last_collect_day"]
        self._last_morphometry_day = meta["last_morphometry_day"]
        self._metrics = dict(meta["metrics"])
        self.collected_days = arrays["timeseries/time_days"].tolist()
        # series newer than the checkpoint are NaN over its past
        nan = [math.nan] * len(self.collected_days)
        self.datacollector.model_vars = {
            m: arrays[f"timeseries/{m}"].tolist() if f"timeseries/{m}" in arrays else list(nan) for m in self.metric_names
        }
        self.world.update_bone_weight()

    # ------------------------------------------------------------------ metrics
    def metrics(self, elapsed_days: float) -> dict[str, float]:
        """Every time-series metric now; rates are averaged over ``elapsed_days``."""
        s = self.state
        bone = s.bone
        cortical = s.cortical_mask if s.cortical_mask.any() else None
        trabecular = s.trabecular_mask
        ob = self.stores["osteoblast"]["stage"]
        oc = self.stores["osteoclast"]["stage"]
        delta = {k: self.totals[k] - self._last_totals[k] for k in self.totals}
        marrow_space = (s.label == Tissue.MARROW) | (s.label == Tissue.ADIPOSE)
        return {
            "bv_tv": morphometry.bv_tv(bone, trabecular),
            "porosity": morphometry.porosity(bone),
            "cortical_porosity": float("nan") if cortical is None else morphometry.cortical_porosity(bone, cortical),
            "vbmd_mg_cm3": bmd.vbmd_mg_cm3(s.mineral),
            "trabecular_vbmd_mg_cm3": bmd.vbmd_mg_cm3(s.mineral, trabecular),
            "abmd_g_cm2": bmd.abmd_g_cm2(s.mineral, bone, s.voxel_um),
            "tmd_mg_cm3": bmd.tmd_mg_cm3(s.mineral, bone),
            "marrow_adiposity": morphometry.marrow_adiposity(s.label == Tissue.ADIPOSE, marrow_space & trabecular),
            "n_osteoclast": int(np.count_nonzero(oc == OC.RESORBING)),
            "n_osteoclast_precursor": int(np.count_nonzero(oc == OC.PRECURSOR)),
            "n_osteoblast": len(ob),
            "n_preosteoblast": int(np.count_nonzero(ob == OB.PRE)),
            "n_active_osteoblast": int(np.count_nonzero(ob == OB.ACTIVE)),
            "n_lining": int(np.count_nonzero(ob == OB.LINING)),
            "n_bmsc": len(self.stores["bmsc"]),
            "n_adipocyte": len(self.stores["adipocyte"]),
            "resorbed_um3_per_day": delta["resorbed_voxels"] * self.voxel_um3 / elapsed_days,
            "formed_um3_per_day": delta["formed_voxels"] * self.voxel_um3 / elapsed_days,
            "active_bmus": self.bmus.active_count(self),
            "bmu_activations": self.totals["activations"],
            "expected_bmu_activations": self.totals["expected_activations"],
            "cortical_bmu_activations": self.totals["cortical_activations"],
            "expected_cortical_bmu_activations": self.totals["expected_cortical_activations"],
            "bmu_activations_inhibited_by_glucose": self.totals["activations_inhibited_by_glucose"],
            "bmus_closed_short": self.totals["bmus_closed_short"],
            "bmus_arrested_in_reversal": self.totals["bmus_arrested"],
            "osteocytes_formed": self.totals["osteocytes"],
            "matrix_age_products_au": float(s.age_products_au[bone].mean()) if bone.any() else math.nan,
            "estrogen": self.systemic["estrogen"],
            "glucose_mM": self.systemic["glucose_mM"],
            "insulin_sensitivity": self.systemic["insulin_sensitivity"],
            "pth_pg_mL": self.systemic["pth_pg_mL"],
            **self._microarchitecture(),
            **{name: delta[name] / elapsed_days for name in DEATHS},
            **self._field_means(s.label == Tissue.MARROW),
        }

    def _field_means(self, marrow: np.ndarray) -> dict[str, float]:
        """Mean of every field over the marrow (where the cells read them), field units."""
        n = np.count_nonzero(marrow)
        return {
            f"mean_{name}": float(self.fields.values[i][marrow].sum(dtype=np.float64) / n) if n else math.nan
            for i, name in enumerate(self.fields.names)
        }

    def _microarchitecture(self) -> dict[str, float]:
        """Tb.Th, Tb.Sp, Tb.N and Conn.D of the trabecular compartment, every morphometry interval."""
        if self.time_days - self._last_morphometry_day + 1e-9 < self.scenario.output.morphometry_interval_days:
            return dict.fromkeys(MICROARCHITECTURE, math.nan)
        self._last_morphometry_day = self.time_days
        s = self.state
        bone, region, um = s.bone, s.trabecular_mask, s.voxel_um
        tb_th = morphometry.tb_th_um(bone, um, region)
        tb_sp = morphometry.tb_sp_um(bone, um, region)
        return {
            "tb_th_um": tb_th, "tb_sp_um": tb_sp, "tb_n_per_mm": morphometry.tb_n_per_mm(tb_th, tb_sp),
            "conn_d_per_mm3": morphometry.conn_d_per_mm3(bone, um, region),
        }


def _hashed_normal(seed: int, uid: np.ndarray) -> np.ndarray:
    """Standard normal numbers fixed by (seed, uid): splitmix64 hash, then the inverse normal CDF."""
    from scipy.special import ndtri

    x = np.uint64((seed * 0x9E3779B97F4A7C15) & 0xFFFFFFFFFFFFFFFF) + uid.astype(np.uint64)  # arrays wrap mod 2^64
    with np.errstate(over="ignore"):
        x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        x = x ^ (x >> np.uint64(31))
    u = ((x >> np.uint64(11)).astype(np.float64) + 0.5) / float(1 << 53)
    return ndtri(u)


def _reporter(name: str):
    return lambda model: model._metrics[name]

"""Schema of the cells, their base behaviours, signalling modules and rules tables.

Behaviours are named rates or multipliers with their unit in the name. The rules
tables modulate them by signals (PhysiCell-style rows a biologist can read):
"in osteoclast, tgf_beta increases apoptosis_per_day, half-max 20 pM, Hill 2,
saturation 0.3". See :mod:`abm.rules` for how rows combine.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from abm.config.schema_base import Section

class CellBase(Section):
    """Parameters every cell type has."""

    apoptosis_per_day: float = Field(0.0, ge=0, le=10, description="base apoptosis hazard, 1/day")
    secretion_per_s: dict[str, float] = Field(
        default_factory=dict, description="field -> secretion into the cell's voxel, field units/s"
    )
    uptake_per_s: dict[str, float] = Field(
        default_factory=dict, description="field -> first-order uptake in the cell's voxel, 1/s"
    )


class OsteoclastConfig(CellBase):
    """Osteoclasts: recruited on exposed bone where RANKL/OPG is high; resorb; apoptose."""

    activation_per_mm2_per_year: float = Field(
        0.8, ge=0, le=100, description="BMU activations per mm^2 of bone surface per year at full RANK occupancy"
    )
    osteoclasts_per_bmu: int = Field(6, ge=1, le=100, description="precursors recruited per activation")
    fusion_days: float = Field(2.0, gt=0, le=30, description="mean time for precursors to fuse and start resorbing, days")
    lifespan_days: float = Field(36.0, gt=0, le=365, description="mean resorbing lifespan, days (Eriksen 1986: resorption 30-45 d)")
    lifespan_sd_days: float = Field(4.0, ge=0, le=100, description="spread of the lifespan, days")
    erosion_um_per_day: float = Field(
        30.0, ge=0, le=200, description="advance of the resorbing front along the surface, um/day (20-50 um/day)"
    )
    footprint_um2: float = Field(2000.0, gt=0, le=1e5, description="resorbing (sealing-zone) area, um^2")
    cavity_depth_um: float = Field(
        50.0, gt=0, le=500, description="final erosion depth below the original surface, um (Eriksen 1986: 50-60 um)"
    )


class OsteoblastConfig(CellBase):
    """Osteoblasts: pre-osteoblast -> active (lays osteoid) -> lining cell, osteocyte or apoptosis."""

    differentiation_days: float = Field(
        8.0, gt=0, le=100,
        description="maturation time of a pre-osteoblast at the cavity at the base rate (rules can slow it), days",
    )
    apposition_um_per_day: float = Field(
        0.9, ge=0, le=10, description="mineral apposition rate of an active osteoblast, um/day"
    )
    active_lifespan_days: float = Field(
        200.0, gt=0, le=2000, description="longest active (matrix-laying) period before retiring, days"
    )
    osteocyte_fraction: float = Field(
        0.1, ge=0, le=1, description="probability that an osteoblast is buried as an osteocyte when its voxel fills"
    )
    lining_apoptosis_per_day: float = Field(
        0.002, ge=0, le=10, description="death hazard of lining cells, 1/day"
    )
    relocation_um: float = Field(
        40.0, gt=0, le=500, description="how far an osteoblast looks for more cavity when its voxel is full, um"
    )
    recruitment_radius_um: float = Field(
        400.0, gt=0, le=5000, description="how far from a cavity a committed BMSC can be recruited to it, um"
    )
    refill_fraction: float = Field(
        0.97, gt=0, le=1.0,
        description="fraction of its resorbed volume a BMU's osteoblasts refill; adult BMUs end slightly"
        " negative (wall thickness a few % below erosion depth; Eriksen 1986, Parfitt 1983)",
    )
    recruitment_closes: bool = Field(
        True,
        description="switch: a BMU recruits pre-osteoblasts only until recruitment_window_days after its"
        " resorption ends, then its team refills alone, so osteoblasts that die are not replaced and a BMU whose"
        " team is gone closes short of its refill (wall width = team size x work per osteoblast; Parfitt 1983,"
        " Jilka 1999), or never forms if no team gathered (arrested reversal, the main source of age-related"
        " cortical pores; Andreasen 2018); false: recruitment stays open until the BMU is refilled",
    )
    recruitment_window_days: float = Field(
        30.0, gt=0, le=1000,
        description="days after a BMU's last osteoclast stopped resorbing during which it still recruits"
        " pre-osteoblasts (the reversal-resorption phase, when osteoprogenitors gather on the eroded surface;"
        " Lassen 2017, Christiansen 2023)",
    )
    wait_for_resorption: bool = Field(
        True,
        description="pre-osteoblasts mature only once their BMU has no osteoclasts left, so formation follows"
        " resorption after a reversal of about differentiation_days (Eriksen 1986)",
    )


class BMSCConfig(CellBase):
    """Bone-marrow stromal cells: proliferate; commit to osteoblast or adipocyte."""

    initial_per_mm3: float = Field(500.0, ge=0, le=1e5, description="initial density in marrow, cells/mm^3")
    capacity_per_mm3: float = Field(600.0, gt=0, le=1e6, description="density at which proliferation stops, cells/mm^3")
    proliferation_per_day: float = Field(0.3, ge=0, le=10, description="base division rate at low density, 1/day")
    osteoblast_commitment_per_day: float = Field(
        0.05, ge=0, le=50,
        description="base rate of asymmetric division into a pre-osteoblast (only with a free cavity in reach), 1/day",
    )
    adipocyte_commitment_per_day: float = Field(
        0.0002, ge=0, le=10, description="base rate of commitment to the adipocyte lineage, 1/day"
    )
    apoptosis_per_day: float = Field(0.02, ge=0, le=10, description="base apoptosis hazard, 1/day")
    migration_um_per_hour: float = Field(10.0, ge=0, le=200, description="random-walk speed in marrow, um/h")


class AdipocyteConfig(CellBase):
    """Marrow adipocytes: occupy a marrow voxel; secrete adipokines."""

    apoptosis_per_day: float = Field(0.0014, ge=0, le=10, description="base death hazard, 1/day (about 2-year life)")


class Cells(Section):
    """The four cell types."""

    osteoclast: OsteoclastConfig = Field(default_factory=OsteoclastConfig)
    osteoblast: OsteoblastConfig = Field(default_factory=OsteoblastConfig)
    bmsc: BMSCConfig = Field(default_factory=BMSCConfig)
    adipocyte: AdipocyteConfig = Field(default_factory=AdipocyteConfig)


class RankModule(Section):
    """RANK/RANKL/OPG binding: OPG is a decoy receptor that sequesters RANKL."""

    rankl_half_occupancy: float = Field(
        20.0, gt=0, le=1e6, description="free RANKL giving half RANK occupancy, RANKL field units"
    )
    opg_binding_constant: float = Field(
        30.0, gt=0, le=1e6, description="OPG that halves free RANKL, OPG field units"
    )
    matrix_rankl_per_s: float = Field(
        0.002, ge=0, le=1e3, description="RANKL from osteocytes, per mineralised voxel, RANKL units/s"
    )
    matrix_opg_per_s: float = Field(
        0.0, ge=0, le=1e3,
        description="OPG from osteocytes, per mineralised voxel, OPG units/s (osteocytes secrete OPG under"
        " beta-catenin control, Kramer 2010 Mol Cell Biol 30:3071, and are a main source of the RANKL/OPG that"
        " sets resorption, Nakashima 2011, Xiong 2011): OPG tied to bone, not to the lining cells that recent BMUs"
        " leave. 0 keeps all OPG cellular (baseline)",
    )


class WntModule(Section):
    """Wnt/beta-catenin: per-cell beta-catenin follows local Wnt with a time constant."""

    wnt_half_activation: float = Field(1.0, gt=0, le=1e6, description="Wnt giving half-maximal beta-catenin, Wnt units")
    time_constant_hours: float = Field(12.0, gt=0, le=1e4, description="beta-catenin response time, hours")


class TGFBetaModule(Section):
    """TGF-beta coupling: latent TGF-beta stored in matrix is released by resorption."""

    release_per_voxel: float = Field(
        2.0e4, ge=0, le=1e6, description="TGF-beta released per fully mineralised voxel resorbed, field units x voxel"
    )


class EstrogenModule(Section):
    """Estrogen's actions outside the cells' rules tables (their rows use the signal ``estrogen_loss``).

    With ``estrogen_loss`` = 1 - estrogen (0 before menopause), each effect scales linearly.
    """

    matrix_rankl_gain: float = Field(
        0.75, ge=0, le=20,
        description="osteocytic RANKL is multiplied by 1 + gain x estrogen_loss (osteocytes are a main RANKL"
        " source, Nakashima 2011; the size of their response to estrogen loss is an assumption: the 2-3x RANKL"
        " per marrow cell of early postmenopausal women, Eghbali-Fatourechi 2003, is carried by the stromal"
        " IL-6/TNF-alpha rules of premenopausal.toml); with those rules it sets how much more often BMUs"
        " activate after menopause (about 2-3x, Recker 2004); calibrated with the estrogen-loss osteoblast"
        " apoptosis rule to the SWAN slopes (README calibration)",
    )
    matrix_opg_loss: float = Field(
        0.5, ge=0, le=1,
        description="osteocytic OPG (signalling.rank.matrix_opg_per_s) is multiplied by 1 - loss x estrogen_loss"
        " (estrogen raises OPG in the osteoblast lineage, Hofbauer 1999 Endocrinology 140:4367; the osteoblast"
        " OPG row of premenopausal.toml cuts OPG by about half at full loss, and osteocytes are assumed to follow)",
    )
    osteoclast_lifespan_gain: float = Field(
        0.5, ge=0, le=10,
        description="a new osteoclast's lifespan is multiplied by 1 + gain x estrogen_loss (estrogen promotes"
        " osteoclast apoptosis; Hughes 1996)",
    )
    refill_loss: float = Field(
        0.0, ge=0, le=1,
        description="a BMU's refill quota falls by refill_loss x estrogen_loss: thinner walls beyond those the"
        " osteoblasts' shorter life already leaves. 0 by default: the estrogen-loss osteoblast apoptosis rule of"
        " premenopausal.toml thins the walls through the team (Manolagas 2000), and a second, direct cut"
        " would count that effect twice",
    )


class GlycationModule(Section):
    """Non-enzymatic glycation of the matrix: AGEs (pentosidine-like) accumulate with glucose and time."""

    age_per_day: float = Field(
        1.0e-4, ge=0, le=1,
        description="AGE added per day to mineralised matrix at normal glucose, a.u./day (1 a.u. ~ the AGE of"
        " matrix 27 years old at 5 mM)",
    )
    glucose_gain_per_mM: float = Field(
        0.25, ge=0, le=10,
        description="relative increase of the glycation rate per mM of local glucose above 5.5 mM"
        " (cortical pentosidine higher in T2DM; Saito 2006, Yamamoto 2008)",
    )


class HyperglycaemiaModule(Section):
    """Glucose's action on osteoclastogenesis, outside the rules tables (their rows use ``glucose_excess_mM``).

    High glucose inhibits RANKL-induced osteoclast differentiation (Wittrant 2008, Bone 42:1122), one
    cause of the low bone turnover of T2DM (CTX and P1NP 20-40 % lower; Hygum 2017). Each BMU
    activation picked by RANKL/OPG goes ahead with probability
    1 - osteoclastogenesis_inhibition x g / (half_max_mM + g), g = local glucose above 5.5 mM.
    """

    osteoclastogenesis_inhibition: float = Field(
        0.86, ge=0, le=1, description="fraction of BMU activations lost at saturating excess glucose (high glucose"
        " inhibits RANKL-induced osteoclastogenesis, Wittrant 2008 Bone 42:1122; 0.86 with half_max 2 mM loses"
        " 0.55 at 9 mM; calibrated on the turnover markers, 20-40 % lower in T2DM, Hygum 2017; README"
        " calibration)",
    )
    half_max_mM: float = Field(
        2.0, gt=0, le=100, description="glucose above 5.5 mM that gives half the inhibition, mM (assumption)"
    )

    def inhibited_fraction(self, excess_mM):
        """Share of BMU activations that glucose ``excess_mM`` above 5.5 mM stops (a number or an array)."""
        return self.osteoclastogenesis_inhibition * excess_mM / (self.half_max_mM + excess_mM)


class PTHModule(Section):
    """Endogenous parathyroid hormone (the systemic input ``pth_pg_mL``): it sets osteocytic RANKL.

    PTH receptor signalling in osteocytes drives the RANKL gene (Ben-awadh 2014, Endocrinology
    155:2797; O'Brien 2008, PLoS One 3:e2942), so osteocytic (matrix) RANKL is multiplied by
    max(0, 1 + matrix_rankl_gain x (pth / reference - 1)). Serum PTH is lower in T2DM (35 against 47
    pg/mL, He 2024 Int J Endocrinol 8414689; Yamamoto 2012 JCEM 97:1277, where lower PTH went with
    lower bone formation). Continuous endogenous PTH only: intermittent teriparatide is a treatment.

    ``pth_pg_mL`` is the serum PTH of a vitamin-D-replete person. Below the sufficient 25(OH)D of 75 nM
    the parathyroids secrete more (secondary hyperparathyroidism): the PTH the bone sees is multiplied by
    1 + vitamin_d_deficit_gain x vitamin_d_deficit, the deficit being 1 - 25(OH)D / 75 nM (after a vitamin
    D dose and the VDR response), so a vitamin D supplement lowers it again.
    """

    reference_pg_mL: float = Field(
        47.0, gt=0, le=1000,
        description="serum intact PTH at which matrix_rankl_per_s applies, pg/mL (healthy controls' median 47,"
        " He 2024)",
    )
    matrix_rankl_gain: float = Field(
        1.0, ge=0, le=10,
        description="relative change of osteocytic RANKL per relative change of serum PTH (1: proportional within"
        " the physiological range; an assumption: PTH induces osteocytic RANKL, Ben-awadh 2014)",
    )

    vitamin_d_deficit_gain: float = Field(
        0.5, ge=0, le=5,
        description="relative rise of serum PTH per unit vitamin-D deficit (1 - 25(OH)D / 75 nM): 0.5 gives +17 %"
        " at 50 nM, +33 % at 25 nM and exactly none at 75 nM or more (the model's sufficiency; Lu 2012 PLoS One"
        " 7:e47264 saw PTH fall across 25(OH)D categories up to and above 75 nM, with no plateau). In"
        " postmenopausal T2DM women 25(OH)D is lower where PTH and the resorption marker NTX are higher (Mori"
        " 2015 Intern Med 54:1599). The direction is sourced, the size is an assumption",
    )

    def serum_pg_mL(self, replete_pg_mL: float, vitamin_d_deficit: float) -> float:
        """Serum PTH of a person whose replete PTH is ``replete_pg_mL``, at a vitamin-D deficit (see
        :func:`abm.config.systemic.vitamin_d_deficit`); exactly ``replete_pg_mL`` without a deficit."""
        if not vitamin_d_deficit:
            return replete_pg_mL
        return replete_pg_mL * (1.0 + self.vitamin_d_deficit_gain * vitamin_d_deficit)

    def matrix_rankl_factor(self, pth_pg_mL: float) -> float:
        """Multiplier of osteocytic RANKL at serum PTH ``pth_pg_mL`` (exactly 1 at the reference)."""
        return max(0.0, 1.0 + self.matrix_rankl_gain * (pth_pg_mL / self.reference_pg_mL - 1.0))


class MicrovascularModule(Section):
    """Diabetic microvascular disease of the cortex (the person's ``individual.microvascular_disease``, 0-1).

    Cortical bone is supplied only through the capillaries of its canals, while trabecular bone is bathed by
    the marrow's sinusoids. With microvascular disease the intracortical vessels expand (T2D: vessel volume
    +13 %, pore diameter +3.6 %) and cortical porosity is higher (+12.9 % relative with MVD, Loeffler 2024 Bone
    Rep 20:101745; Shanbhogue 2016 Eur J Endocrinol 174:115; de Waard 2018 Osteoporos Int 29:2725), with
    remodelling targeted at the canals. Three consequences, all in the cortical compartment only (the second
    and third off by default: README):

    - Hypoxia raises RANKL and osteoclast formation through HIF-1alpha (Knowles 2015 Hypoxia 3:73), so
      osteocytic (matrix) RANKL there is multiplied by 1 + cortical_rankl_gain x microvascular_disease.
    - Osteoprogenitors reach a BMU's reversal surface with its capillaries (the canopy and capillary route,
      Kristensen 2014 Am J Pathol 184:778; osteogenesis coupled to capillaries, Ramasamy 2014 Nature
      507:323), and a cortical cavity that recruits too few of them refills short and stays a pore
      (Andreasen 2018 J Bone Miner Res 33:606). A pre-osteoblast bound for a cortical BMU is lost with
      probability cortical_recruitment_loss x microvascular_disease.
    - Osteoblasts are hypoxic there too, and hypoxia cuts their matrix output (rat calvarial osteoblasts at
      2 % O2 formed far fewer mineralised nodules, with less collagen and alkaline phosphatase, Utting 2006 Exp
      Cell Res 312:1693): an osteoblast in the cortical compartment lays matrix at 1 - cortical_apposition_loss
      x microvascular_disease of its rate (0 by default; 0.7 in configs/t2dm.toml, calibrated in the README).
    """

    cortical_rankl_gain: float = Field(
        2.0, ge=0, le=20,
        description="relative rise of osteocytic RANKL in the cortical compartment at microvascular_disease 1"
        " (hypoxic osteocytes of poorly perfused canals; an assumption: at 2 the cortical activation hazard of"
        " a spun-up T2DM block rose by about 50 %, the trabecular one by 9 %; calibration in the README)",
    )
    cortical_recruitment_loss: float = Field(
        0.0, ge=0, le=1,
        description="fraction of pre-osteoblasts bound for a cortical BMU that never reach it at"
        " microvascular_disease 1 (fewer capillaries bring fewer osteoprogenitors; an assumption, off by default:"
        " 0.3 at a RANKL gain of 2 left cortical refill about where it was, 0.67 against 0.70 without it, and the"
        " porosity did not rise, +21 against +24 % over healthy, 10 seeds; README)",
    )
    cortical_apposition_loss: float = Field(
        0.0, ge=0, lt=1,
        description="relative drop of the matrix apposition rate of osteoblasts in the cortical compartment at"
        " microvascular_disease 1 (hypoxic osteoblasts of poorly perfused canals lay less matrix, Utting 2006;"
        " an assumption, 0 by default and 0.7 in t2dm.toml, where it lowers the refill of cortical BMUs and"
        " raises the cortical porosity of T2DM over healthy; calibration in the README)",
    )


class Signalling(Section):
    """Mechanistic signalling modules that derive signals for the rules."""

    rank: RankModule = Field(default_factory=RankModule)
    wnt: WntModule = Field(default_factory=WntModule)
    tgf_beta: TGFBetaModule = Field(default_factory=TGFBetaModule)
    estrogen: EstrogenModule = Field(default_factory=EstrogenModule)
    glycation: GlycationModule = Field(default_factory=GlycationModule)
    hyperglycaemia: HyperglycaemiaModule = Field(default_factory=HyperglycaemiaModule)
    pth: PTHModule = Field(default_factory=PTHModule)
    microvascular: MicrovascularModule = Field(default_factory=MicrovascularModule)


class Mineralisation(Section):
    """Osteoid maturation: a lag, fast primary, then slow secondary mineralisation."""

    lag_days: float = Field(15.0, ge=0, le=200, description="osteoid maturation time before mineralising, days")
    primary_fraction: float = Field(0.6, gt=0, le=1, description="mineral fraction reached at once after the lag")
    secondary_time_constant_days: float = Field(
        250.0, gt=0, le=1e5, description="time constant of secondary mineralisation to full, days"
    )


class Rule(Section):
    """One row of a rules table."""

    signal: str = Field(description="a field name or a derived signal (rank_occupancy, beta_catenin)")
    direction: Literal["increases", "decreases"] = Field(description="effect of the signal on the behaviour")
    behaviour: str = Field(description="a behaviour key of the cell type, e.g. apoptosis_per_day")
    half_max: float = Field(gt=0, description="signal value at half effect, signal units")
    hill: float = Field(1.0, gt=0, le=20, description="Hill power")
    saturation: float = Field(ge=0, description="behaviour value when the signal is saturating, behaviour units")


class Rules(Section):
    """Rules tables, one per cell type."""

    osteoclast: list[Rule] = Field(default_factory=list, description="osteoclast rules")
    osteoblast: list[Rule] = Field(default_factory=list, description="osteoblast rules")
    bmsc: list[Rule] = Field(default_factory=list, description="BMSC rules")
    adipocyte: list[Rule] = Field(default_factory=list, description="adipocyte rules")

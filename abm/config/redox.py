"""Schema of the per-cell redox mechanisms: iron and ferroptosis, mitochondria and mitophagy.

Each mechanism is switchable and every parameter names its unit and source. The two
source reviews are cited as *Jiang 2025* (Jiang L, Song X, Yan L, Liu Y, Qiao X,
Zhang W. Front Endocrinol 15:1483512, doi:10.3389/fendo.2024.1483512; its reference
numbers in brackets, its reference list is not in the seed copy) and *Zhang 2025*
(Zhang K, Li R, Chen J. J Clin Personalized Med 4(2):193-201,
doi:10.12677/jcpm.2025.42163; primary references named). The reviews give
directions, not magnitudes: every magnitude below is a model assumption, chosen
so that the healthy steady state (5 mM glucose, no treatment) is stationary and
the calibration stated in :mod:`abm.cells.redox` holds.

Arbitrary units (a.u.) are defined relative to the healthy steady state:
labile iron, GSH, lipid peroxide, intracellular ROS, mitochondrial mass and ATP
are 1 there. Treatment doses are dimensionless (1 = the standard dose of the
treatment schedule); their effect sizes live here, per mechanism.
"""

from __future__ import annotations

from pydantic import Field

from abm.config.schema_base import Section


class FerroptosisConfig(Section):
    """Labile iron, GSH/GPX4 and lipid peroxide per cell; death when lipid peroxide passes a threshold."""

    enabled: bool = Field(True, description="switch: per-cell iron/GSH/lipid-peroxide dynamics and ferroptotic death")
    iron_export_time_constant_hours: float = Field(
        12.0, gt=0, le=1000,
        description="turnover time of the labile iron pool by ferroportin export at normal glucose, h (assumption)",
    )
    tfr1_uptake_gain: float = Field(
        1.0, ge=0, le=20,
        description="rise of TfR1/DMT1 iron uptake at saturating hyperglycaemia, fraction of normal"
        " (Jiang 2025 §4.2 [4,10])",
    )
    ferroportin_suppression: float = Field(
        1.0, ge=0, le=20,
        description="ferroportin export is divided by 1 + this at saturating hyperglycaemia, dimensionless"
        " (Jiang 2025 §4.2 [4])",
    )
    iron_field_reference: float = Field(
        0.0, ge=0, le=1e6, description="extracellular labile iron field in healthy tissue, iron field units"
    )
    iron_field_uptake_gain: float = Field(
        1.0, ge=0, le=1e3,
        description="fractional rise of iron uptake per iron field unit above the reference, 1/(iron field unit)",
    )
    mito_ferritin_sequestration_per_hour: float = Field(
        0.05, ge=0, le=10,
        description="rate at which empty mitochondrial ferritin (FtMt) takes up labile iron at normal expression, 1/h"
        " (protective: Jiang 2025 §1 [14])",
    )
    mito_ferritin_healthy_fill: float = Field(
        0.3, gt=0, lt=1, description="fraction of FtMt iron capacity filled in the healthy steady state"
    )
    mito_ferritin_turnover_days: float = Field(
        30.0, gt=0, le=1000,
        description="turnover time of FtMt-stored iron (degraded, not returned to the labile pool), days",
    )
    gsh_time_constant_hours: float = Field(
        24.0, gt=0, le=1000, description="basal GSH turnover time (synthesis/degradation), h (assumption)"
    )
    gsh_oxidative_consumption: float = Field(
        1.0, ge=0, le=100,
        description="GSH consumed by the healthy oxidative load, relative to basal turnover (Jiang 2025 §4.2 [6])",
    )
    gsh_lipid_peroxide_weight: float = Field(
        0.1, ge=0, le=10,
        description="weight of lipid peroxide (GPX4 uses GSH to reduce it) in the oxidative load on GSH, relative to ROS",
    )
    gsh_glucose_suppression: float = Field(
        0.5, ge=0, le=20,
        description="GSH synthesis is divided by 1 + this at saturating hyperglycaemia, dimensionless"
        " (Jiang 2025 §1 [13]; Zhang 2025 [13]: Hamada 2009 Bone 45:S35)",
    )
    lipid_peroxide_time_constant_hours: float = Field(
        2.0, gt=0, le=100, description="turnover time of membrane lipid peroxide (L-OOH) in the healthy cell, h"
    )
    gpx4_fraction: float = Field(
        0.9, ge=0, le=1, description="share of healthy L-OOH removal done by GSH-dependent GPX4 (rest: GSH-independent)"
    )
    threshold: float = Field(
        35.0, gt=1, le=1e4,
        description="median lipid peroxide at which a cell dies by ferroptosis, a.u. (1 = healthy level; calibrated)",
    )
    threshold_spread: float = Field(
        0.8, ge=0, le=3,
        description="standard deviation of ln(threshold) between cells (PUFA/ACSL4 susceptibility), dimensionless",
    )
    deferoxamine_uptake_block: float = Field(
        1.0, ge=0, le=100,
        description="iron uptake is divided by 1 + this x deferoxamine dose (Jiang 2025 §4.3 [5,25])",
    )
    deferoxamine_chelation_per_hour: float = Field(
        0.05, ge=0, le=10, description="labile iron chelated per hour per unit deferoxamine dose, 1/h (Jiang 2025 §4.3 [5])"
    )
    nac_synthesis_gain: float = Field(
        1.0, ge=0, le=100, description="GSH synthesis rises by this x NAC dose, fraction of normal (Jiang 2025 §4.3 [4,10])"
    )
    ferrostatin_scavenging_gain: float = Field(
        2.0, ge=0, le=100,
        description="extra L-OOH removal per unit ferrostatin-1 dose, relative to healthy removal"
        " (radical-trapping antioxidant; Jiang 2025 §4.3)",
    )
    inflammatory_release_per_death: float = Field(
        500.0, ge=0, le=1e7,
        description="inflammatory signal released into each inflammatory field by a ferroptotic death, field units x voxel"
        " (NF-kB/MAPK activation: Jiang 2025 §4.2 [2])",
    )
    inflammatory_fields: list[str] = Field(
        default_factory=list,
        description="fields of the scenario that receive the release of a ferroptotic death (each the full amount);"
        " the disease scenarios name tnf_alpha and il1beta",
    )
    peroxide_function_loss: float = Field(
        0.0, ge=0, le=10,
        description="sub-lethal lipid peroxidation impairs the osteoblast before it kills it: matrix synthesis and"
        " pre-osteoblast differentiation are divided by 1 + this x the cell's lipid peroxide above healthy (L - 1),"
        " 1/a.u. (ferroptosis inhibits osteoblast differentiation and mineralisation: Jiang 2025 §4.2 [3]; oxidised"
        " lipids inhibit osteogenic differentiation: Parhami 1997 Arterioscler Thromb Vasc Biol 17:680; a sub-toxic"
        " oxidant halves mineralisation: Arai 2007 IUBMB Life 59:27); 0 = off: lipid peroxide acts only by death at"
        " the threshold",
    )


class MitochondriaConfig(Section):
    """Damaged-mitochondria fraction, mitophagy (PGC-1a/FoxO3a, NIPA2), ATP, mitochondrial ROS and Bax/Cyt-c apoptosis."""

    enabled: bool = Field(
        True, description="switch: per-cell mitochondrial damage, mitophagy, ATP and mitochondrial apoptosis"
    )
    healthy_damaged_fraction: float = Field(
        0.05, gt=0, lt=0.5, description="damaged fraction of mitochondria in the healthy steady state"
    )
    mitophagy_time_constant_hours: float = Field(
        24.0, gt=0, le=1000, description="mean time for healthy mitophagy to clear a damaged mitochondrion, h"
    )
    glucose_damage_gain: float = Field(
        2.0, ge=0, le=100,
        description="rise of the damage rate at saturating hyperglycaemia, fraction of normal"
        " (depolarisation, ROS: Jiang 2025 §5.1 [20])",
    )
    ros_damage_gain: float = Field(
        1.0, ge=0, le=100, description="rise of the damage rate per unit intracellular ROS above healthy, fraction of normal"
    )
    age_damage_gain: float = Field(
        0.5, ge=0, le=100,
        description="rise of the damage rate per AGE unit above the reference, fraction of normal"
        " (AGE-RAGE oxidative stress: Zhang 2025 §3.3 [23]: Willett 2014 Curr Osteoporos Rep 12:329)",
    )
    age_reference: float = Field(
        4.0, ge=0, le=1e6,
        description="matrix AGE exposure above which AGE-RAGE adds mitochondrial damage, a.u. (at 5 mM matrix holds"
        " about 1 per 10000 days of age, so 98 % of healthy bone stays below 4; see signalling.glycation)",
    )
    acute_mitophagy_induction: float = Field(
        0.5, ge=0, le=100,
        description="compensatory rise of mitophagy at saturating acute hyperglycaemia, fraction of normal"
        " (Jiang 2025 §5.1 [20,21])",
    )
    exposure_time_constant_days: float = Field(
        30.0, gt=0, le=3650,
        description="memory of the per-cell hyperglycaemia exposure (running mean of the glucose excess), days",
    )
    impairment_half_exposure_mM: float = Field(
        4.0, gt=0, le=50,
        description="sustained glucose excess (exposure) that halves mitophagy, mM"
        " (NIPA2 and PGC-1a/FoxO3a down: Jiang 2025 §5.1 [16-19,22])",
    )
    impairment_hill: float = Field(
        2.0, gt=0, le=10, description="Hill power of the mitophagy impairment in the sustained exposure"
    )
    damaged_ros_ratio: float = Field(
        10.0, ge=1, le=1000,
        description="ROS output of a damaged mitochondrion relative to a healthy one (Jiang 2025 §8 [20])",
    )
    ros_release_per_s: float = Field(
        0.01, ge=0, le=1e3,
        description="ROS a cell releases into its voxel per unit of its mitochondrial ROS above healthy (a.u.),"
        " ROS field units/s",
    )
    ampk_mitophagy_gain: float = Field(
        1.0, ge=0, le=100,
        description="rise of mitophagy per unit metformin (AMPK) dose, fraction of normal"
        " (Zhang 2025 §4.5 [36]: Palermo 2017 Calcif Tissue Int 100:122)",
    )
    ampk_ros_reduction: float = Field(
        0.5, ge=0, le=100,
        description="mitochondrial ROS is divided by 1 + this x metformin dose"
        " (Zhang 2025 [18]: Chen 2023 Life Sci 312:121092)",
    )
    glp1_mitophagy_gain: float = Field(
        0.5, ge=0, le=100,
        description="rise of mitophagy per unit GLP-1 analogue dose, fraction of normal"
        " (liraglutide, exendin-4: Jiang 2025 §5.2 [28,29])",
    )
    excess_flux_threshold: float = Field(
        3.0, gt=1, le=100,
        description="mitophagy activity (relative to healthy) above which healthy mitochondria are also removed"
        " (excessive autophagy harms: Jiang 2025 §5.2 [20])",
    )
    excess_flux_loss_per_hour: float = Field(
        0.002, ge=0, le=10, description="loss of mitochondrial mass per hour per unit activity above the threshold, 1/h"
    )
    biogenesis_time_constant_days: float = Field(
        7.0, gt=0, le=1000, description="time for PGC-1a-driven biogenesis to restore mitochondrial mass, days"
    )
    atp_time_constant_hours: float = Field(
        6.0, gt=0, le=1000, description="time for ATP to follow mitochondrial capacity, h"
    )
    synthesis_half_atp: float = Field(
        0.5, gt=0, le=1,
        description="half-saturation ATP of the synthesis limit A^n (K^n + 1) / (K^n + A^n) (1 at healthy ATP = 1), a.u."
        " (less ATP, less formation: Jiang 2025 §8 [33,34])",
    )
    synthesis_hill: float = Field(2.0, gt=0, le=10, description="Hill power of the ATP limit on matrix synthesis")
    apoptosis_damage_threshold: float = Field(
        0.15, gt=0, lt=1,
        description="damaged fraction above which Bax/cytochrome c apoptosis starts (Jiang 2025 §8 [17,19,20])",
    )
    apoptosis_half_excess: float = Field(
        0.3, gt=0, le=1, description="damaged fraction above the threshold giving half the maximal apoptosis hazard"
    )
    apoptosis_hill: float = Field(2.0, gt=0, le=10, description="Hill power of the apoptosis hazard in the excess damage")
    apoptosis_max_per_day: float = Field(
        0.01, ge=0, le=10, description="maximal mitochondrial (Bax/Cyt-c) apoptosis hazard, 1/day"
    )


class RedoxConfig(Section):
    """Per-cell redox state: glucose sensing shared by the mechanisms, and the mechanisms themselves."""

    normal_glucose_mM: float = Field(
        5.5, ge=2, le=15,
        description="glucose at and below which there is no hyperglycaemic drive, mM (upper normal fasting glucose)",
    )
    glucose_half_effect_mM: float = Field(
        3.0, gt=0, le=50, description="glucose excess over normal giving half of each saturating hyperglycaemic effect, mM"
    )
    glucose_hill: float = Field(2.0, gt=0, le=10, description="Hill power of the hyperglycaemic drive in the glucose excess")
    ros_field_reference: float = Field(
        0.0, ge=0, le=1e6, description="ROS field in healthy tissue, ROS field units (a.u.)"
    )
    ros_field_weight: float = Field(
        1.0, ge=0, le=1e3,
        description="intracellular ROS added per ROS field unit above the reference, a.u. (1 = healthy intracellular ROS)",
    )
    ferroptosis: FerroptosisConfig = Field(default_factory=FerroptosisConfig)
    mitochondria: MitochondriaConfig = Field(default_factory=MitochondriaConfig)

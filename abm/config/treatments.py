"""Treatments (dose schedules) and individual modifiers.

Every treatment is a dose schedule (:mod:`abm.config.schedules`) in units of its
standard clinical dose (0 = not given, 1 = standard dose), e.g.::

    [treatments]
    alendronate = {kind = "step", before = 0, after = 1, at_days = 365}   # 70 mg/week from year 1

Each acts through a mechanism of the model, never on the outputs: iron
chelation, GSH synthesis and lipid-peroxide scavenging and AMPK/autophagy act in
the per-cell redox kernels; anti-TNF removes TNF-alpha; alendronate kills
osteoclasts; teriparatide recruits and activates osteoblasts; raloxifene and
hormone therapy act as estrogen; vitamin D raises the 25(OH)D level.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator

from abm.config.schedules import Schedule, bounds
from abm.config.schema_base import Section

_DOSE = {"allowed": "a dose >= 0 (1 = standard dose), or a schedule table (kind = constant, step, ramp, decline or table)"}

TREATMENTS = (
    "deferoxamine", "nac", "ferrostatin", "anti_tnf", "alendronate", "teriparatide", "raloxifene",
    "hormone_therapy", "metformin", "glp1", "vitamin_d",
)


def _dose(description: str):  # noqa: ANN202 - a pydantic Field
    return Field(0.0, validate_default=True, json_schema_extra=_DOSE, description=description)


class Treatments(Section):
    """Dose schedules, 1 = standard dose (see the effects in [treatment_effects])."""

    deferoxamine: Schedule = _dose("iron chelator deferoxamine: lowers cellular iron uptake and the labile pool")
    nac: Schedule = _dose("N-acetylcysteine: raises GSH synthesis")
    ferrostatin: Schedule = _dose("ferrostatin-1: scavenges lipid peroxide (ferroptosis inhibitor)")
    anti_tnf: Schedule = _dose("anti-TNF antibody (e.g. infliximab): neutralises TNF-alpha")
    alendronate: Schedule = _dose("alendronate 70 mg/week: raises osteoclast apoptosis, lowers erosion")
    teriparatide: Schedule = _dose("teriparatide 20 ug/day (intermittent PTH): osteoblast recruitment and activity")
    raloxifene: Schedule = _dose("raloxifene 60 mg/day: estrogen agonist on bone")
    hormone_therapy: Schedule = _dose("estrogen therapy (HRT): restores estrogen")
    metformin: Schedule = _dose("metformin: AMPK activation (better mitochondria, less ROS)")
    glp1: Schedule = _dose("GLP-1 analogue: raises autophagy/mitophagy")
    vitamin_d: Schedule = _dose("vitamin D3 supplement: raises 25(OH)D (see treatment_effects)")

    @field_validator(*TREATMENTS)
    @classmethod
    def _non_negative(cls, schedule):  # noqa: ANN001 - pydantic hook
        low, high = bounds(schedule)
        if low < 0 or high > 10:
            raise ValueError("out of range" if low == high else f"out of range (its values span {low:g}..{high:g})")
        return schedule

    def at(self, days: float) -> dict[str, float]:
        """Every treatment's dose at ``days``."""
        return {name: getattr(self, name).at(days) for name in TREATMENTS}


class TreatmentEffects(Section):
    """What a standard dose does (each effect scales linearly with the dose)."""

    anti_tnf_neutralised: float = Field(
        0.8, ge=0, le=1, description="fraction of TNF-alpha neutralised at a standard dose (extra clearance)",
    )
    alendronate_osteoclast_apoptosis_per_day: float = Field(
        0.1, ge=0, le=10, description="osteoclast apoptosis hazard added at a standard dose, 1/day (Hughes 1995:"
        " bisphosphonates induce osteoclast apoptosis)",
    )
    alendronate_activation_reduction: float = Field(
        0.5, ge=0, le=1, description="fraction by which BMU activation falls at a standard dose (turnover markers"
        " fall about 50-70 %; Black 1996 FIT)",
    )
    teriparatide_commitment_gain: float = Field(
        1.0, ge=0, le=20, description="relative rise of BMSC osteoblast commitment at a standard dose"
        " (Neer 2001; Jilka 1999: PTH raises osteoblast number)",
    )
    teriparatide_apposition_gain: float = Field(
        0.3, ge=0, le=10, description="relative rise of osteoblast apposition rate at a standard dose",
    )
    raloxifene_estrogen_equivalent: float = Field(
        0.5, ge=0, le=1.5, description="estrogen level (fraction of premenopausal) a standard dose adds on bone",
    )
    hormone_therapy_estrogen_equivalent: float = Field(
        0.8, ge=0, le=1.5, description="estrogen level a standard dose of HRT adds",
    )
    vitamin_d_nM_per_dose: float = Field(
        40.0, ge=0, le=500, description="25(OH)D rise at a standard dose (1000-2000 IU/day), nM",
    )


VDR_VARIANTS = ("TaqI", "ApaI", "BsmI", "FokI")
MTDNA_VARIANTS = ("ND2", "Mt4823", "mt15885")


class Individual(Section):
    """The simulated person: genotype modifiers, age and body mass index."""

    vdr_risk_alleles: list[Literal["TaqI", "ApaI", "BsmI", "FokI"]] = Field(
        default_factory=list, description="VDR polymorphisms carried (risk genotypes: TaqI tt, ApaI aa, BsmI BB,"
        " FokI ff); each lowers the vitamin-D response by vdr_response_loss (Zhang 2025 review)",
    )
    vdr_response_loss: float = Field(
        0.15, ge=0, le=1, description="fraction of vitamin-D response lost per VDR risk allele (assumption)",
    )
    mtdna_variants: list[Literal["ND2", "Mt4823", "mt15885"]] = Field(
        default_factory=list, description="mtDNA variants carried; each multiplies basal mitochondrial ROS by"
        " mtdna_ros_multiplier (Zhang 2025 review)",
    )
    mtdna_ros_multiplier: float = Field(
        1.1, ge=1, le=3, description="basal mitochondrial ROS multiplier per mtDNA variant (assumption)",
    )
    age_years: float = Field(
        55.0, ge=18, le=110, description="age at the start of the run, years; basal mitochondrial ROS rises with"
        " age above age_reference_years, growing as the run goes on",
    )
    age_reference_years: float = Field(
        55.0, ge=18, le=110, description="age at which age_ros_per_decade adds nothing, years",
    )
    age_ros_per_decade: float = Field(
        0.1, ge=0, le=2, description="relative rise of basal mitochondrial ROS per decade above the reference age"
        " (oxidative stress of skeletal ageing; Manolagas 2010 Endocr Rev 31:266; Almeida 2007)",
    )
    bmi_kg_m2: float = Field(
        24.0, ge=12, le=70, description="body mass index; each 5 kg/m^2 above 25 adds 0.25 to the fat"
        " inflammatory load (assumption standing in for perirenal fat thickness)",
    )
    microvascular_disease: float = Field(
        0.0, ge=0, le=1, description="diabetic microvascular disease (1: established retinopathy, nephropathy or"
        " neuropathy; 0: none); raises osteocytic RANKL in the cortex and can slow cortical osteoblasts and keep"
        " osteoprogenitors from cortical BMUs (signalling.microvascular)",
    )

    @property
    def vitamin_d_response(self) -> float:
        return (1.0 - self.vdr_response_loss) ** len(self.vdr_risk_alleles)

    def basal_ros_multiplier(self, days: float = 0.0) -> float:
        """Basal mitochondrial ROS relative to the reference person, ``days`` into the run."""
        decades = max(0.0, self.age_years + days / 365.25 - self.age_reference_years) / 10.0
        return self.mtdna_ros_multiplier ** len(self.mtdna_variants) * (1.0 + self.age_ros_per_decade * decades)

    @property
    def fat_inflammation_from_bmi(self) -> float:
        return max(0.0, self.bmi_kg_m2 - 25.0) / 5.0 * 0.25

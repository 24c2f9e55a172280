"""Systemic inputs: whole-body levels that change over the run (schedules).

Each is a schedule (:mod:`abm.config.schedules`): a number, or a step, ramp,
decline or table over simulated days. They reach the tissue through the fields
(glucose at the boundary faces and vessels) and as signals every rules table can
use (see :data:`abm.rules.catalogue.SYSTEMIC_SIGNALS`).
"""

from __future__ import annotations

from pydantic import Field, field_validator, model_validator

from abm.config.schedules import Schedule, bounds
from abm.config.schema_base import Section

#: Largest allowed value of the bounded inputs.
_RANGES = {"glucose_mM": 40.0, "hba1c_percent": 20.0, "insulin_sensitivity": 1.5, "estrogen": 1.5, "fat_inflammation": 10.0, "vitamin_d_nM": 500.0, "pth_pg_mL": 1000.0}

#: Fasting plasma glucose of a healthy adult, mM: the level below which there is no hyperglycaemia.
NORMAL_GLUCOSE_MM = 5.5
#: Serum 25(OH)D at and above which vitamin D is sufficient, nM (Endocrine Society, Holick 2011).
SUFFICIENT_VITAMIN_D_NM = 75.0


def vitamin_d_deficit(vitamin_d_nM: float) -> float:
    """1 - 25(OH)D / 75 nM, and 0 when sufficient: how far below sufficiency the bone's vitamin D is."""
    return max(0.0, 1.0 - vitamin_d_nM / SUFFICIENT_VITAMIN_D_NM)


def _allowed(name: str) -> dict[str, str]:
    return {"allowed": f"a number in 0..{_RANGES[name]:g}, or a schedule table (kind = constant, step, ramp,"
            " decline or table) whose values stay in that range"}


def glucose_from_hba1c(hba1c_percent: float) -> float:
    """Estimated average glucose (mM) from HbA1c (%), ADAG study (Nathan 2008): eAG = 1.59 x A1c - 2.59."""
    return 1.59 * hba1c_percent - 2.59


class Systemic(Section):
    """Systemic inputs over time (each a number or a schedule table)."""

    glucose_mM: Schedule = Field(
        5.0, json_schema_extra=_allowed('glucose_mM'), validate_default=True, description="fasting plasma glucose, mM (healthy 4-5.5; T2DM 8-10); sets the glucose field at the"
        " boundary faces and vessels that are held at the systemic level",
    )
    hba1c_percent: Schedule | None = Field(
        None, json_schema_extra=_allowed('hba1c_percent'), description="alternatively HbA1c, %; when given, glucose is the ADAG estimated average glucose"
        " 1.59 x HbA1c - 2.59 mM (Nathan 2008) and glucose_mM must be left at its default",
    )
    insulin_sensitivity: Schedule = Field(
        1.0, json_schema_extra=_allowed('insulin_sensitivity'), validate_default=True, description="insulin sensitivity, 1 = healthy, 0 = no insulin response (PI3K/Akt support of BMSC"
        " osteogenesis and beta-catenin falls with it)",
    )
    estrogen: Schedule = Field(
        1.0, json_schema_extra=_allowed('estrogen'), validate_default=True, description="estrogen level as a fraction of premenopausal (1); after the final menstrual period it"
        " falls to about 0.1-0.2 within 1-2 years (e.g. {kind = 'decline', half_life_days = 180})",
    )
    fat_inflammation: Schedule = Field(
        0.0, json_schema_extra=_allowed('fat_inflammation'), validate_default=True, description="perirenal/visceral fat inflammatory load, a.u. (0 lean, 1 obese T2DM): raises TNF-alpha,"
        " IL-6 and IL-1beta entering the marrow",
    )
    vitamin_d_nM: Schedule = Field(
        75.0, json_schema_extra=_allowed('vitamin_d_nM'), validate_default=True, description="serum 25(OH)D, nM (sufficient >= 75, deficient < 50)",
    )
    pth_pg_mL: Schedule = Field(
        47.0, json_schema_extra=_allowed('pth_pg_mL'), validate_default=True, description="serum intact PTH"
        " at a sufficient 25(OH)D, pg/mL (reference range about 15-65; healthy 47, T2DM 35, He 2024): sets"
        " osteocytic RANKL (signalling.pth); below 75 nM 25(OH)D the model raises it by"
        " signalling.pth.vitamin_d_deficit_gain (secondary hyperparathyroidism; the pth_pg_mL series is the raised value)",
    )

    @field_validator("glucose_mM", "hba1c_percent", "insulin_sensitivity", "estrogen", "fat_inflammation", "vitamin_d_nM",
                     "pth_pg_mL")
    @classmethod
    def _in_range(cls, schedule, info):  # noqa: ANN001 - pydantic hook
        if schedule is None:
            return schedule
        low, high = bounds(schedule)
        top = _RANGES[info.field_name]
        if low < 0 or high > top:
            raise ValueError("out of range" if low == high else f"out of range (its values span {low:g}..{high:g})")
        return schedule

    @model_validator(mode="after")
    def _one_glucose(self) -> Systemic:
        if self.hba1c_percent is not None and self.glucose_mM.model_dump() != {"kind": "constant", "value": 5.0}:
            raise ValueError("give either glucose_mM or hba1c_percent, not both")
        return self

    def glucose_at(self, days: float) -> float:
        """Fasting plasma glucose (mM) at ``days``."""
        if self.hba1c_percent is not None:
            return glucose_from_hba1c(self.hba1c_percent.at(days))
        return self.glucose_mM.at(days)

    def at(self, days: float) -> dict[str, float]:
        """Every systemic input at ``days``, by name (glucose as ``glucose_mM``)."""
        return {
            "glucose_mM": self.glucose_at(days),
            "insulin_sensitivity": self.insulin_sensitivity.at(days),
            "estrogen": self.estrogen.at(days),
            "fat_inflammation": self.fat_inflammation.at(days),
            "vitamin_d_nM": self.vitamin_d_nM.at(days),
            "pth_pg_mL": self.pth_pg_mL.at(days),
        }

"""Time schedules of systemic inputs (glucose, estrogen, insulin sensitivity, ...).

A schedule is written in the config as a plain number (constant) or an inline
table with a ``kind``::

    glucose_mM = 5.0                                                   # constant
    estrogen = {kind = "step", before = 1.0, after = 0.1, at_days = 365}
    glucose_mM = {kind = "ramp", start_value = 5.5, end_value = 9.0, start_days = 0, end_days = 730}
    estrogen = {kind = "decline", start_value = 1.0, end_value = 0.1, start_days = 0, half_life_days = 180}
    glucose_mM = {kind = "table", days = [0, 365, 730], values = [5.5, 7.0, 9.0]}   # linear, held at the ends

Time is simulated days since the start of the run.
"""

from __future__ import annotations

import math
from typing import Annotated, Any, Literal

import numpy as np
from pydantic import BeforeValidator, Field, model_validator

from abm.config.schema_base import Section


class Constant(Section):
    """The same value at all times."""

    kind: Literal["constant"] = "constant"
    value: float = Field(description="the value, in the input's units")

    def at(self, days: float) -> float:
        return self.value


class Step(Section):
    """``before`` until ``at_days``, ``after`` from then on."""

    kind: Literal["step"]
    before: float
    after: float
    at_days: float = Field(ge=0)

    def at(self, days: float) -> float:
        return self.before if days < self.at_days else self.after


class Ramp(Section):
    """Linear change from ``start_value`` at ``start_days`` to ``end_value`` at ``end_days``, held outside."""

    kind: Literal["ramp"]
    start_value: float
    end_value: float
    start_days: float = Field(ge=0)
    end_days: float = Field(ge=0)

    @model_validator(mode="after")
    def _ordered(self) -> Ramp:
        if self.end_days <= self.start_days:
            raise ValueError(f"end_days must be after start_days (got {self.start_days:g} .. {self.end_days:g})")
        return self

    def at(self, days: float) -> float:
        f = min(max((days - self.start_days) / (self.end_days - self.start_days), 0.0), 1.0)
        return self.start_value + f * (self.end_value - self.start_value)


class Decline(Section):
    """Exponential approach from ``start_value`` to ``end_value`` from ``start_days`` (e.g. estrogen after menopause)."""

    kind: Literal["decline"]
    start_value: float
    end_value: float
    start_days: float = Field(ge=0)
    half_life_days: float = Field(gt=0)

    def at(self, days: float) -> float:
        if days <= self.start_days:
            return self.start_value
        left = math.exp(-math.log(2.0) * (days - self.start_days) / self.half_life_days)
        return self.end_value + (self.start_value - self.end_value) * left


class Table(Section):
    """Values at given days, linearly interpolated and held beyond the first and last."""

    kind: Literal["table"]
    days: list[float] = Field(min_length=1)
    values: list[float] = Field(min_length=1)

    @model_validator(mode="after")
    def _matching(self) -> Table:
        if len(self.days) != len(self.values):
            raise ValueError(f"days and values differ in length (got {len(self.days)} and {len(self.values)})")
        if any(b <= a for a, b in zip(self.days, self.days[1:])):
            raise ValueError(f"days must increase (got {self.days})")
        return self

    def at(self, days: float) -> float:
        return float(np.interp(days, self.days, self.values))


def _number_is_constant(value: Any) -> Any:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return {"kind": "constant", "value": value}
    return value


#: A schedule field: a number or one of the tables above.
Schedule = Annotated[
    Constant | Step | Ramp | Decline | Table,
    Field(discriminator="kind"),
    BeforeValidator(_number_is_constant),
]


def bounds(schedule: Constant | Step | Ramp | Decline | Table) -> tuple[float, float]:
    """Smallest and largest value the schedule takes."""
    if isinstance(schedule, Constant):
        values = [schedule.value]
    elif isinstance(schedule, Step):
        values = [schedule.before, schedule.after]
    elif isinstance(schedule, Table):
        values = schedule.values
    else:
        values = [schedule.start_value, schedule.end_value]
    return min(values), max(values)

"""The scenario schema: every key typed, range-checked and documented.

Units are in key names (``dt_hours``, ``diffusivity_marrow_um2_per_s``). Unknown
keys are rejected. ``Field(description=...)`` texts feed the README's config
reference, so keep them one line with the unit.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Field, PlainValidator, field_validator, model_validator

from abm.config.cells import Cells, Mineralisation, Rules, Signalling
from abm.config.schema_base import Section
from abm.config.redox import RedoxConfig
from abm.config.systemic import Systemic
from abm.config.treatments import Individual, TreatmentEffects, Treatments

FACES = ("x_min", "x_max", "y_min", "y_max", "z_min", "z_max")
ZERO_FLUX = "zero_flux"


def _face_condition(value: object) -> float | str:
    if value == ZERO_FLUX:
        return ZERO_FLUX
    if isinstance(value, (int, float)) and not isinstance(value, bool) and value >= 0:
        return float(value)
    raise ValueError(f"must be '{ZERO_FLUX}' or a fixed concentration >= 0")


_FACE = {"allowed": "'zero_flux' or a number >= 0"}
FaceCondition = Annotated[float | str, PlainValidator(_face_condition)]


class Boundary(Section):
    """Boundary condition per face of the domain: 'zero_flux' or a fixed value (field units)."""

    x_min: FaceCondition = Field(ZERO_FLUX, description="condition at face x = 0 (fixed value in field units)", json_schema_extra=_FACE)
    x_max: FaceCondition = Field(ZERO_FLUX, description="condition at face x = end (fixed value in field units)", json_schema_extra=_FACE)
    y_min: FaceCondition = Field(ZERO_FLUX, description="condition at face y = 0 (fixed value in field units)", json_schema_extra=_FACE)
    y_max: FaceCondition = Field(ZERO_FLUX, description="condition at face y = end (fixed value in field units)", json_schema_extra=_FACE)
    z_min: FaceCondition = Field(ZERO_FLUX, description="condition at face z = 0 (fixed value in field units)", json_schema_extra=_FACE)
    z_max: FaceCondition = Field(ZERO_FLUX, description="condition at face z = end (fixed value in field units)", json_schema_extra=_FACE)

    def fixed_values(self) -> dict[str, float | None]:
        """Face -> fixed value, or None for zero-flux (the solver's form)."""
        return {face: (None if getattr(self, face) == ZERO_FLUX else getattr(self, face)) for face in FACES}


class FieldConfig(Section):
    """One diffusing field (a cytokine, nutrient or reactive species)."""

    units: str = Field("nM", description="concentration unit of this field (label only)")
    diffusivity_marrow_um2_per_s: float = Field(
        ge=0, le=1e5, description="diffusivity in marrow and soft tissue, um^2/s"
    )
    diffusivity_bone_um2_per_s: float = Field(
        ge=0, le=1e5, description="diffusivity in fully mineralised bone, um^2/s (interpolated by mineral fraction)"
    )
    decay_per_s: float = Field(ge=0, le=10, description="first-order decay rate, 1/s")
    initial_value: float = Field(0.0, ge=0, description="initial concentration everywhere, field units")
    boundary: Boundary = Field(default_factory=Boundary, description="per-face boundary conditions")
    systemic: Literal["glucose_mM", "fat_inflammation", "estrogen", "insulin_sensitivity", "vitamin_d_nM"] | None = Field(
        None, description="systemic input ([systemic]) that sets the blood level of this field over time: level ="
        " systemic_scale x input, held on the fixed-value faces and exchanged in vessel voxels",
    )
    systemic_scale: float = Field(
        1.0, ge=0, le=1e6, description="blood level per unit of the systemic input, field units per input unit",
    )
    matrix_release_per_voxel: float = Field(
        0.0, ge=0, le=1e9, description="amount freed per fully mineralised voxel resorbed (matrix-bound factors such"
        " as iron), field units x voxel",
    )
    vessel_exchange_per_s: float = Field(
        0.0, ge=0, le=10, description="exchange rate with blood in vessel voxels, 1/s (source k x level, uptake k);"
        " needs `systemic`",
    )


class MarrowAndMatrix(Section):
    """Vessels added to the marrow and the initial state of the matrix, for any bone source."""

    vessel_volume_fraction: float = Field(0.02, ge=0, le=0.3, description="marrow volume fraction given to vessels")
    vessel_diameter_um: float = Field(30.0, ge=5, le=500, description="marrow vessel diameter, um")
    mineral_fraction: float = Field(
        0.9, gt=0, le=1, description="mineral fraction of bone voxels in the generated geometry; a model run"
        " replaces it by the mineral its own kinetics give each voxel's matrix age",
    )
    mean_matrix_age_days: float = Field(
        10000.0, ge=0, le=1e5,
        description="mean of the exponential initial matrix age, days; in steady state it is 1/turnover, about"
        " 10000 d at the baseline activation frequency (younger matrix makes BMD drift up as it mineralises)",
    )


class SyntheticGeometry(MarrowAndMatrix):
    """Synthetic bone block: trabecular interior plus optional cortical shell and vessels."""

    bv_tv: float = Field(0.22, ge=0.05, le=0.6, description="target trabecular bone volume fraction")
    tb_th_um: float = Field(150.0, ge=15, le=1000, description="target trabecular thickness, um")
    cortical_thickness_um: float = Field(
        200.0, ge=0, le=5000, description="cortical shell thickness, um (0 = no cortex)"
    )
    cortical_porosity: float = Field(0.05, ge=0, le=0.5, description="pore (canal) fraction of the cortex")
    canal_diameter_um: float = Field(50.0, ge=5, le=500, description="Haversian canal diameter, um")
    cortical_faces: list[Literal["x_min", "x_max", "y_min", "y_max"]] = Field(
        default_factory=lambda: ["y_min", "y_max"], description="faces carrying the cortical shell (canals run along z)"
    )
    seed: int = Field(1, ge=0, description="geometry seed (kept apart from the run seed)")


class MicroCTGeometry(MarrowAndMatrix):
    """A real micro-CT volume (.npy or multi-page TIFF)."""

    path: str = Field(description="volume file, relative to the config file's folder")
    threshold: float | None = Field(None, description="grey value above which a voxel is bone (needed unless boolean)")
    crop: list[int] | None = Field(None, description="sub-volume (z0, z1, y0, y1, x0, x1), voxels, half-open",
        json_schema_extra={"allowed": "six integers >= 0, or absent for the whole volume"},
    )
    seed: int = Field(1, ge=0, description="seed for vessels and matrix ages")

    @field_validator("crop")
    @classmethod
    def _six_bounds(cls, crop: list[int] | None) -> list[int] | None:
        if crop is not None and (len(crop) != 6 or any(c < 0 for c in crop)):
            raise ValueError("must be six non-negative voxel indices (z0, z1, y0, y1, x0, x1)")
        return crop


class Geometry(Section):
    """The voxel world."""

    kind: Literal["synthetic", "microct"] = Field("synthetic", description="where the bone comes from")
    voxel_um: float = Field(20.0, ge=5, le=50, description="voxel edge, um")
    shape_voxels: list[Annotated[int, Field(ge=8, le=1024)]] = Field(
        default_factory=lambda: [100, 100, 100], description="synthetic domain size (z, y, x), voxels",
        json_schema_extra={"allowed": "three integers >= 8 and <= 1024"},
    )
    synthetic: SyntheticGeometry = Field(default_factory=SyntheticGeometry)
    microct: MicroCTGeometry | None = Field(None, description="required when kind = 'microct'")

    @field_validator("shape_voxels")
    @classmethod
    def _three_axes(cls, shape: list[int]) -> list[int]:
        if len(shape) != 3:
            raise ValueError("must list three sizes (z, y, x)")
        return shape

    @model_validator(mode="after")
    def _microct_present(self) -> "Geometry":
        if self.kind == "microct" and self.microct is None:
            raise ValueError("kind = 'microct' needs a [geometry.microct] section with a path")
        return self


class Time(Section):
    """Time stepping."""

    dt_hours: float = Field(1.0, gt=0, le=24, description="agent time step, hours")
    field_dt_hours: float = Field(
        6.0, gt=0, le=48, description="interval between field solves, hours (a multiple of dt_hours): each solve advances"
        " the fields by the whole interval (backward Euler) from the cells' sources averaged over it"
    )
    days: float = Field(7.0, ge=0, le=36500, description="simulated duration, days")
    spinup_days: float = Field(
        0.0, ge=0, le=36500,
        description="days the block remodels before day 0 under the inputs it has then (every schedule held at its"
        " value before day 0), so that a run starts from remodelling in progress (BMUs at every stage, the lining"
        " cells and the OPG they secrete) rather than from a block with no cells on its surfaces; not recorded:"
        " time series, snapshots and counters start at day 0 and BMUs opened during it have negative days",
    )

    @model_validator(mode="after")
    def _field_step_is_a_multiple(self) -> "Time":
        ratio = self.field_dt_hours / self.dt_hours
        if abs(ratio - round(ratio)) > 1e-9 or round(ratio) < 1:
            raise ValueError(
                f"field_dt_hours ({self.field_dt_hours:g}) must be a whole multiple of dt_hours ({self.dt_hours:g})"
            )
        return self


class Output(Section):
    """What is recorded and how often."""

    interval_days: float = Field(1.0, gt=0, le=3650, description="time-series sampling interval, days")
    snapshot_interval_days: float = Field(
        30.0, gt=0, le=36500,
        description="interval of the snapshots in the run file (every field, the voxel state, every agent), days",
    )
    checkpoint_interval_days: float = Field(
        30.0, gt=0, le=36500, description="interval of the checkpoints that `abm run --resume` continues from, days"
    )
    morphometry_interval_days: float = Field(
        7.0, gt=0, le=3650, description="interval of the slower Tb.Th/Tb.Sp/Conn.D measurements, days"
    )


class Solver(Section):
    """Numerical settings of the field solver."""

    dtype: Literal["float32", "float64"] = Field("float32", description="floating-point precision of the fields")
    rel_tol: float = Field(1e-6, gt=0, le=1e-2, description="relative residual tolerance of each implicit solve")


class Scenario(Section):
    """A complete scenario."""

    name: str = Field("scenario", description="run name (output file stem)")
    description: str = Field("", description="free text")
    seed: int = Field(0, ge=0, description="run seed (cells, stochastic rules)")
    time: Time = Field(default_factory=Time)
    geometry: Geometry = Field(default_factory=Geometry)
    solver: Solver = Field(default_factory=Solver)
    fields: dict[str, FieldConfig] = Field(default_factory=dict, description="diffusing fields by name")
    cells: Cells = Field(default_factory=Cells)
    signalling: Signalling = Field(default_factory=Signalling)
    mineralisation: Mineralisation = Field(default_factory=Mineralisation)
    rules: Rules = Field(default_factory=Rules)
    output: Output = Field(default_factory=Output)
    systemic: Systemic = Field(default_factory=Systemic)
    redox: RedoxConfig = Field(default_factory=RedoxConfig)
    treatments: Treatments = Field(default_factory=Treatments)
    treatment_effects: TreatmentEffects = Field(default_factory=TreatmentEffects)
    individual: Individual = Field(default_factory=Individual)

    @field_validator("fields", mode="before")
    @classmethod
    def _identifier_names(cls, fields: Any) -> Any:
        for name in fields if isinstance(fields, dict) else ():
            if isinstance(fields, dict) and not name.isidentifier():
                raise ValueError(f"field name {name!r} must be a plain identifier (letters, digits, _)")
        return fields

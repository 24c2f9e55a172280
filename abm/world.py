"""The world a scenario describes: the voxel state and the fields on it."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from abm.config.schema import Scenario
from abm.fields import FieldSolver, FieldSpec
from abm.geometry import Tissue, VoxelState
from abm.geometry.microct import load_volume
from abm.geometry.synthetic import generate_block


@dataclass
class World:
    """Voxel state plus the field solver whose diffusivity follows the bone."""

    state: VoxelState
    fields: FieldSolver

    def update_bone_weight(self) -> None:
        """Tell the solver where mineralised matrix is (diffusivity falls with mineral fraction)."""
        self.fields.set_bone_weight(bone_weight(self.state))


def bone_weight(state: VoxelState) -> np.ndarray:
    """Per-voxel weight 0..1 of bone diffusivity: the mineral fraction of matrix voxels."""
    matrix = (state.label == Tissue.BONE) | (state.label == Tissue.OSTEOID)
    return np.where(matrix, state.mineral, np.float32(0)).astype(np.float32)


def build_geometry(scenario: Scenario) -> VoxelState:
    """Generate or load the bone block the scenario describes."""
    geo = scenario.geometry
    if geo.kind == "microct":
        ct = geo.microct
        assert ct is not None  # guaranteed by the schema
        return load_volume(
            ct.path,
            voxel_um=geo.voxel_um,
            threshold=ct.threshold,
            crop=ct.crop,
            vessel_volume_fraction=ct.vessel_volume_fraction,
            vessel_diameter_um=ct.vessel_diameter_um,
            mineral_fraction=ct.mineral_fraction,
            mean_matrix_age_days=ct.mean_matrix_age_days,
            seed=ct.seed,
        )
    syn = geo.synthetic
    return generate_block(tuple(geo.shape_voxels), geo.voxel_um, **syn.model_dump())


def field_specs(scenario: Scenario) -> list[FieldSpec]:
    """Solver specifications of the scenario's fields, in config order."""
    return [
        FieldSpec(
            name=name,
            diffusivity_marrow_um2_per_s=cfg.diffusivity_marrow_um2_per_s,
            diffusivity_bone_um2_per_s=cfg.diffusivity_bone_um2_per_s,
            decay_per_s=cfg.decay_per_s,
            boundary=cfg.boundary.fixed_values(),
            initial_value=cfg.initial_value,
            units=cfg.units,
        )
        for name, cfg in scenario.fields.items()
    ]


def build_world(scenario: Scenario) -> World:
    """Geometry and fields of a scenario, ready to step."""
    state = build_geometry(scenario)
    solver = FieldSolver(
        field_specs(scenario),
        state.shape,
        state.voxel_um,
        dt_s=scenario.time.field_dt_hours * 3600.0,  # one solve advances the fields by the whole interval
        dtype=np.dtype(scenario.solver.dtype),
        rel_tol=scenario.solver.rel_tol,
    )
    world = World(state, solver)
    world.update_bone_weight()
    return world

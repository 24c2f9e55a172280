"""What the rules tables may name: the signals cells sense and the behaviours they have.

Signals are the scenario's fields (sampled in the cell's voxel) plus the derived
signals of the signalling modules and of the systemic inputs. Behaviours are per cell type; their base
values come from the cell's config section (a secretion behaviour
``secretion_per_s.FIELD`` from ``cells.TYPE.secretion_per_s.FIELD``).
"""

from __future__ import annotations

from abm.config.schema import Scenario

CELL_TYPES = ("osteoclast", "osteoblast", "bmsc", "adipocyte")

#: Fields the signalling modules read (RANK/RANKL/OPG binding, TGF-beta coupling).
REQUIRED_FIELDS = ("rankl", "opg", "tgf_beta")

#: Signals derived by the mechanistic modules, available to every cell type.
#: matrix_age_products is the mean AGE content (a.u.) of the matrix voxels beside the cell (AGE-RAGE).
DERIVED_SIGNALS = ("rank_occupancy", "beta_catenin", "matrix_age_products")

#: Signals from the systemic inputs ([systemic]); each is 0 in a healthy premenopausal adult:
#: estrogen_loss = 1 - estrogen, insulin_resistance = 1 - insulin_sensitivity,
#: glucose_excess_mM = local glucose above 5.5 mM, fat_inflammation as given,
#: vitamin_d_deficit = 1 - 25(OH)D / 75 nM (0 when sufficient).
SYSTEMIC_SIGNALS = ("estrogen_loss", "insulin_resistance", "glucose_excess_mM", "fat_inflammation", "vitamin_d_deficit")

#: Behaviours each cell type has besides its secretions.
BEHAVIOURS: dict[str, tuple[str, ...]] = {
    "osteoclast": ("apoptosis_per_day", "erosion_um_per_day"),
    "osteoblast": ("apoptosis_per_day", "apposition_um_per_day", "differentiation_per_day"),
    "bmsc": (
        "apoptosis_per_day",
        "proliferation_per_day",
        "osteoblast_commitment_per_day",
        "adipocyte_commitment_per_day",
    ),
    "adipocyte": ("apoptosis_per_day",),
}


def signals(scenario: Scenario) -> tuple[str, ...]:
    """Every signal name a rule may use, fields first (their order is the solver's)."""
    return (*scenario.fields, *DERIVED_SIGNALS, *SYSTEMIC_SIGNALS)


def behaviours(scenario: Scenario, cell_type: str) -> tuple[str, ...]:
    """Behaviour names of a cell type, secretions last."""
    cfg = getattr(scenario.cells, cell_type)
    return (*BEHAVIOURS[cell_type], *(f"secretion_per_s.{f}" for f in cfg.secretion_per_s))


def base_values(scenario: Scenario, cell_type: str) -> list[float]:
    """Base value of each behaviour, in :func:`behaviours` order."""
    cfg = getattr(scenario.cells, cell_type)
    values = []
    for name in behaviours(scenario, cell_type):
        if name.startswith("secretion_per_s."):
            values.append(cfg.secretion_per_s[name.split(".", 1)[1]])
        elif name == "differentiation_per_day":
            values.append(1.0 / cfg.differentiation_days)
        else:
            values.append(getattr(cfg, name))
    return values


def name_problems(scenario: Scenario) -> list[str]:
    """One error line per rule, secretion or release that names an unknown signal, field or behaviour."""
    problems = [
        f"fields.{name}: required by the signalling modules (define a [fields.{name}] table)"
        for name in REQUIRED_FIELDS
        if name not in scenario.fields
    ]
    known_signals = signals(scenario)
    for cell_type in CELL_TYPES:
        cfg = getattr(scenario.cells, cell_type)
        for table in ("secretion_per_s", "uptake_per_s"):
            for field in getattr(cfg, table):
                if field not in scenario.fields:
                    problems.append(
                        f"cells.{cell_type}.{table}.{field}: unknown field (got {field!r}, allowed one of "
                        f"{', '.join(map(repr, scenario.fields))})"
                    )
        known = behaviours(scenario, cell_type)
        for i, rule in enumerate(getattr(scenario.rules, cell_type)):
            where = f"rules.{cell_type}.{i}"
            if rule.signal not in known_signals:
                problems.append(
                    f"{where}.signal: unknown signal (got {rule.signal!r}, allowed one of "
                    f"{', '.join(map(repr, known_signals))})"
                )
            if rule.behaviour not in known:
                problems.append(
                    f"{where}.behaviour: not a behaviour of {cell_type} (got {rule.behaviour!r}, allowed one of "
                    f"{', '.join(map(repr, known))})"
                )
        problems += _saturation_problems(cell_type, getattr(scenario.rules, cell_type))
    for field in scenario.redox.ferroptosis.inflammatory_fields:
        if field not in scenario.fields:
            problems.append(
                f"redox.ferroptosis.inflammatory_fields: unknown field (got {field!r}, allowed one of "
                f"{', '.join(map(repr, scenario.fields))})"
            )
    return problems


def _saturation_problems(cell_type: str, rules: list) -> list[str]:
    """The engine moves a behaviour towards ONE saturation per direction (PhysiCell's rules: the largest of
    the increasing rules, the smallest of the decreasing ones), so a rule with a saturation of its own would
    silently act with another's: one error line per such rule, naming the first rule it disagrees with."""
    first: dict[tuple[str, str], int] = {}
    problems = []
    for i, rule in enumerate(rules):
        j = first.setdefault((rule.behaviour, rule.direction), i)
        if rules[j].saturation != rule.saturation:
            problems.append(
                f"rules.{cell_type}.{i}.saturation: rules that {rule.direction[:-1]} {rule.behaviour} share one"
                f" saturation (got {rule.saturation!r}, rules.{cell_type}.{j} has {rules[j].saturation!r});"
                " set a rule's strength with half_max"
            )
    return problems

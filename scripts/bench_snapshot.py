"""How much a run-file snapshot costs, next to the simulation it interrupts.

Builds the default scenario (configs/baseline.toml, a 100^3 block), times a few
simulated days to get seconds per simulated day, then times writing snapshots
of that state (voxel arrays, every field, every cell table) with RunWriter into
a temporary folder. Prints the write time and size per snapshot and their ratio
to the simulated time between snapshots (default interval 30 days; target
< 10 %), and ends with one JSON line.

    .venv/bin/python scripts/bench_snapshot.py [--days 3] [--repeats 5] [--interval-days 30] [--compare]

``--compare`` also times the other compression settings (none, lzf, gzip 1-4 with shuffle).
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np

from abm.config import load_scenario
from abm.io import run_file
from abm.io.run_file import RunWriter
from abm.model import BoneModel

REPO = Path(__file__).resolve().parents[1]


def snapshot_of(model: BoneModel) -> tuple[dict, dict, dict]:
    """Voxel arrays, fields and cell tables of the model, as RunWriter takes them."""
    state = model.state
    voxels = {name: getattr(state, name) for name in ("label", "mineral", "matrix_age_days", "age_products_au")}
    fields = {name: model.fields.field(name) for name in model.fields.names}
    agents = {}
    for kind, store in model.stores.items():
        table = {}
        for column in store.columns:
            values = store[column]
            if column == "pos":
                table.update(z=values[:, 0], y=values[:, 1], x=values[:, 2])
            else:
                table[column] = values
        agents[kind] = table
    return voxels, fields, agents


def time_writes(model: BoneModel, folder: Path, repeats: int, compression: dict) -> tuple[float, float]:
    """Median seconds per snapshot write and MB per snapshot with ``compression``."""
    run_file.COMPRESSION = compression
    voxels, fields, agents = snapshot_of(model)
    units = {name: model.scenario.fields[name].units if name in model.scenario.fields else "1" for name in fields}
    columns = {kind: {col: np.asarray(v).dtype for col, v in table.items()} for kind, table in agents.items()}
    path = folder / "bench.h5"
    writer = RunWriter(path, model.state.shape, model.state.voxel_um, units, columns, "", "", {})
    base = writer.partial.stat().st_size
    times = []
    for i in range(repeats):
        start = time.perf_counter()
        writer.write_snapshot(float(i), voxels, fields, agents)
        times.append(time.perf_counter() - start)
    writer.close()
    size_mb = (writer.partial.stat().st_size - base) / repeats / 1e6
    writer.partial.unlink()
    return float(np.median(times)), size_mb


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default=str(REPO / "configs" / "baseline.toml"))
    parser.add_argument("--days", type=float, default=3.0, help="simulated days to time (default 3)")
    parser.add_argument("--repeats", type=int, default=5, help="snapshots written per setting (default 5)")
    parser.add_argument("--interval-days", type=float, default=30.0, help="snapshot interval (default 30 d)")
    parser.add_argument("--compare", action="store_true", help="also time other compression settings")
    args = parser.parse_args()

    scenario = load_scenario(args.config)
    start = time.perf_counter()
    model = BoneModel(scenario)
    print(f"built {scenario.name} ({'x'.join(map(str, model.state.shape))} voxels) in "
          f"{time.perf_counter() - start:.1f} s")
    dt_days = scenario.time.dt_hours / 24.0
    model.step()  # compile the kernels outside the timing
    steps = max(1, round(args.days / dt_days))
    start = time.perf_counter()
    for _ in range(steps):
        model.step()
    s_per_day = (time.perf_counter() - start) / (steps * dt_days)
    print(f"simulated {steps * dt_days:g} d: {s_per_day:.2f} s per simulated day, "
          f"{s_per_day * args.interval_days:.0f} s per {args.interval_days:g}-day snapshot interval")
    cells = ", ".join(f"{kind} {len(store)}" for kind, store in model.stores.items())
    print(f"snapshot content: 4 voxel arrays, {len(model.fields.names)} fields, cells: {cells}")

    chosen = dict(run_file.COMPRESSION)
    settings = {"chosen " + _label(chosen): chosen}
    if args.compare:
        settings.update({
            "none": {},
            "lzf+shuffle": {"compression": "lzf", "shuffle": True},
            **{f"gzip{level}+shuffle": {"compression": "gzip", "compression_opts": level, "shuffle": True}
               for level in (1, 4)},
            "gzip1": {"compression": "gzip", "compression_opts": 1},
        })
    interval_s = s_per_day * args.interval_days
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        time_writes(model, Path(tmp), 1, chosen)  # warm up (imports, page cache)
        for label, compression in settings.items():
            write_s, mb = time_writes(model, Path(tmp), args.repeats, compression)
            results[label] = (write_s, mb)
            print(f"{label:<28} {write_s * 1000:8.0f} ms per snapshot {mb:8.2f} MB per snapshot "
                  f"{100 * write_s / interval_s:6.2f} % of the interval")
    run_file.COMPRESSION = chosen
    write_s, mb = results["chosen " + _label(chosen)]
    print(json.dumps({
        "snapshot_write_s": round(write_s, 4),
        "mb_per_snapshot": round(mb, 3),
        "fraction_of_interval": round(write_s / interval_s, 5),
        "s_per_simulated_day": round(s_per_day, 3),
        "interval_days": args.interval_days,
        "compression": _label(chosen),
    }))


def _label(compression: dict) -> str:
    if not compression:
        return "none"
    text = str(compression.get("compression"))
    if compression.get("compression_opts") is not None:
        text += str(compression["compression_opts"])
    return text + ("+shuffle" if compression.get("shuffle") else "")


if __name__ == "__main__":
    main()

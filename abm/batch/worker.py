"""Run one batch run in the current (fresh) process; ``python -m abm.batch.worker`` does it from JSON.

A task is a JSON-able dict: ``run_id``, ``config`` (the resolved scenario as TOML,
its ``name`` the run id), ``out`` (the absolute ``OUT/runs`` folder) and
``threads`` (numba threads for this run). :func:`execute` returns a dict with
``run_id``, ``status`` (``ok`` or ``failed``), ``error`` (one line, "" when ok),
``wall_time_s`` and ``resumed`` (continued from a checkpoint left by a killed batch).

Each run needs a process of its own: Mesa 3.3.1 keeps every model instance alive,
so a process that ran one model must not run another. The local pool gets this from
``max_tasks_per_child=1``; on a Dask cluster :func:`run_in_subprocess` starts
``python -m abm.batch.worker`` for each task, reading the task on stdin and
printing the result as the last line of stdout.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from typing import Any


def execute(task: dict[str, Any]) -> dict[str, Any]:
    """Run ``task`` here and now; never raises for a failing run."""
    clock = time.perf_counter()
    result = {"run_id": task["run_id"], "status": "failed", "error": "", "wall_time_s": 0.0, "resumed": False}
    try:
        import tomllib
        from pathlib import Path

        import numba

        from abm.config import validate
        from abm.errors import UserError
        from abm.model import NumericalFault
        from abm.runner import paths, run_scenario

        numba.set_num_threads(max(1, min(int(task.get("threads", 1)), numba.config.NUMBA_NUM_THREADS)))
        scenario = validate(tomllib.loads(task["config"]))
        out = Path(task["out"])
        final, ckpt = paths(scenario, out)
        partial = final.with_name(final.name + ".partial")
        try:
            if ckpt.is_file() and partial.is_file():
                try:
                    run_scenario(scenario, out, resume=True, quiet=True)
                    result["resumed"] = True
                except UserError as err:
                    if "resume" not in str(err):
                        raise
                    run_scenario(scenario, out, resume=False, quiet=True)  # unusable checkpoint: start afresh
            else:
                run_scenario(scenario, out, resume=False, quiet=True)
            result["status"] = "ok"
        except NumericalFault as err:
            result["error"] = f"numerical fault at {err}"
        except UserError as err:
            result["error"] = str(err)
    except Exception as err:  # noqa: BLE001 - any failure of a run is recorded, the batch goes on
        result["error"] = f"{type(err).__name__}: {err}"
    result["error"] = " ".join(str(result["error"]).split())
    result["wall_time_s"] = round(time.perf_counter() - clock, 3)
    return result


def run_in_subprocess(task: dict[str, Any], slots_per_host: dict[str, int] | None = None) -> dict[str, Any]:
    """Run ``task`` in a fresh ``python -m abm.batch.worker`` process (the Dask task function).

    ``slots_per_host`` maps a worker host to the number of runs the cluster runs there
    at once; the run gets ``cores // slots`` numba threads (at least 1).
    """
    task = dict(task)
    if slots_per_host is not None:
        task["threads"] = max(1, _cores() // max(1, slots_per_host.get(_worker_host(), 1)))
    clock = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "abm.batch.worker"], input=json.dumps(task),
                          capture_output=True, text=True)
    lines = proc.stdout.strip().splitlines()
    if lines:
        try:
            return json.loads(lines[-1])
        except json.JSONDecodeError:
            pass
    tail = (proc.stderr.strip().splitlines() or ["no output"])[-1]
    return {"run_id": task["run_id"], "status": "failed", "resumed": False,
            "error": f"worker process exited with status {proc.returncode}: {tail}",
            "wall_time_s": round(time.perf_counter() - clock, 3)}


def _cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        return os.cpu_count() or 1


def _worker_host() -> str:
    try:
        from distributed import get_worker

        address = get_worker().address  # tcp://HOST:PORT
        return address.split("://", 1)[-1].rsplit(":", 1)[0]
    except (ImportError, ValueError):
        return ""


def main() -> int:
    task = json.loads(sys.stdin.read())
    result = execute(task)
    sys.stdout.write("\n" + json.dumps(result) + "\n")
    sys.stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())

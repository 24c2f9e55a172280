"""Run a batch: every planned run in a fresh process, locally or on a Dask cluster.

:func:`run_batch` plans the batch (:mod:`abm.batch.plan`), skips runs whose
``OUT/runs/RUN.h5`` is complete (a run file gets its final name only when the run
finishes, so a killed run leaves ``RUN.h5.partial`` and is run again; if it left a
checkpoint it continues from it), runs the rest, records each run's status and
one-line error in ``OUT/index.csv`` as it finishes, and writes the tidy table
(``OUT/batch.csv``, ``OUT/batch.h5``) from every complete run file.

Local runs go to a ``ProcessPoolExecutor`` with the spawn start method and
``max_tasks_per_child=1`` (Mesa 3.3.1 keeps every model alive, so each run needs a
fresh process), with ``workers x numba threads <= cores``. With a Dask scheduler
address or scheduler file the same tasks go to ``distributed``; each task starts
``python -m abm.batch.worker`` so that it, too, runs in a fresh process, and the
run files are bitwise the same as the local pool's (``OUT`` must be on a file
system the workers see under the same absolute path).
"""

from __future__ import annotations

import json
import multiprocessing
import os
import sys
import threading
import time
import uuid
from collections import Counter, deque
from collections.abc import Callable, Iterable
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import h5py
import pandas as pd
from tqdm import tqdm

from abm import __version__
from abm.batch.plan import Plan, PlannedRun, make_plan
from abm.batch.spec import load_spec
from abm.batch.worker import _cores, execute, run_in_subprocess
from abm.errors import UserError
from abm.io.batch import INDEX_CSV, META_JSON, RUNS, write_json, write_table
from abm.io.run_file import open_run

#: How long to try reaching a Dask scheduler.
CONNECT_TIMEOUT = "20s"
#: Seconds between rewrites of the index while runs finish (it is always written at the end).
INDEX_EVERY_S = 2.0


@dataclass
class BatchResult:
    """What :func:`run_batch` did."""

    out: Path
    plan: Plan
    index: pd.DataFrame
    executed: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    table: pd.DataFrame | None = None
    where: str = ""

    @property
    def failed(self) -> pd.DataFrame:
        return self.index[self.index["status"] == "failed"]


def run_batch(
    spec_path: str | os.PathLike,
    out: str | os.PathLike | None = None,
    *,
    workers: int | None = None,
    cluster: str | None = None,
    scheduler_file: str | os.PathLike | None = None,
    progress: bool = False,
    log: Callable[[str], None] | None = None,
) -> BatchResult:
    """Run (or resume) the batch of ``spec_path`` into ``out`` (default ``batches/NAME``).

    Args:
        workers: local pool size (default: one per core, at most one per pending run).
        cluster: Dask scheduler address ``tcp://HOST:PORT`` (instead of the local pool).
        scheduler_file: Dask scheduler file (instead of the local pool).
        progress: show a progress bar over runs (with ETA).
        log: called with one line per finished run when there is no bar, and with the
            plan summary; None for silence.
    """
    say = log or (lambda line: None)
    spec, folder = load_spec(spec_path)
    if cluster and scheduler_file:
        raise UserError("--cluster and --scheduler-file: give one of them")
    if workers is not None and workers < 1:
        raise UserError(f"--workers: must be >= 1 (got {workers})")
    if workers is not None and (cluster or scheduler_file):
        raise UserError("--workers: only for the local pool; a cluster runs as many runs at once as it has worker threads")
    plan = make_plan(spec, folder)
    out = Path(out) if out is not None else Path("batches") / spec.name
    if out.exists() and not out.is_dir():
        raise UserError(f"--out: {out} exists and is not a folder")
    client = connect_dask(cluster, scheduler_file) if cluster or scheduler_file else None
    try:
        return _run_plan(plan, spec_path, out, client, workers, progress, say)
    finally:
        if client is not None:
            client.close()


def _run_plan(plan: Plan, spec_path: str | os.PathLike, out: Path, client: Any, workers: int | None,
              progress: bool, say: Callable[[str], None]) -> BatchResult:
    spec = plan.spec
    runs_dir = (out / RUNS).resolve()
    runs_dir.mkdir(parents=True, exist_ok=True)
    out = out.resolve()

    rows = {run.run_id: _index_row(run, plan) for run in plan.runs}
    result = BatchResult(out, plan, pd.DataFrame())
    stale = []
    todo: list[PlannedRun] = []
    for run in plan.runs:
        final = runs_dir / f"{run.run_id}.h5"
        if run.config is None:
            rows[run.run_id].update(status="failed", error=run.error)
        elif final.is_file():
            if _stored_config(final) != run.config:
                stale.append(final.name)
            rows[run.run_id].update(status="ok", file=f"{RUNS}/{final.name}")
            result.skipped.append(run.run_id)
        else:
            todo.append(run)
    if stale:
        raise UserError(
            f"{runs_dir}: {len(stale)} run file(s) were written from a different scenario than this spec gives "
            f"(e.g. {stale[0]}; did the spec, a scenario file or the abm version change?): use another --out or "
            "delete them"
        )
    _write_meta(out, plan, spec_path)
    _write_index(out, rows, plan)

    n_invalid = len(plan.invalid)
    say(f"batch {spec.name}: {len(plan.runs)} runs ({len(spec.arms)} arm(s) x {len(plan.samples)} sample(s) x "
        f"{spec.replicates} replicate(s)); {len(result.skipped)} already complete, {n_invalid} invalid, {len(todo)} to run")
    for arm, error in dict.fromkeys((r.arm, r.error) for r in plan.invalid):
        count = sum(1 for r in plan.invalid if r.arm == arm and r.error == error)
        say(f"invalid scenario, {count} run(s) of arm {arm} recorded as failed: {error}")

    if todo:
        tasks = [{"run_id": r.run_id, "config": r.config, "out": str(runs_dir), "threads": 1} for r in todo]
        bar = tqdm(total=len(tasks), unit="run", desc=spec.name, disable=not progress, smoothing=0.1,
                   bar_format="{l_bar}{bar}| {n}/{total} runs [{elapsed}<{remaining}{postfix}]")
        last_write = time.monotonic()
        failed_now = 0

        def finished(res: dict[str, Any]) -> None:
            nonlocal last_write, failed_now
            row = rows[res["run_id"]]
            row.update(status=res["status"], error=res.get("error", ""), wall_time_s=res.get("wall_time_s"),
                       finished_utc=_now())
            if res["status"] == "ok":
                row["file"] = f"{RUNS}/{res['run_id']}.h5"
            else:
                failed_now += 1
            result.executed.append(res["run_id"])
            if not bar.disable:
                bar.update(1)
                if failed_now:
                    bar.set_postfix_str(f"{failed_now} failed", refresh=False)
            else:
                text = f"{res['status']} in {res.get('wall_time_s', 0):.1f} s"
                if res["status"] != "ok":
                    text += f": {res['error']}"
                say(f"[{len(result.executed)}/{len(tasks)}] {res['run_id']} {text}")
            if time.monotonic() - last_write > INDEX_EVERY_S:
                _write_index(out, rows, plan)
                last_write = time.monotonic()

        try:
            if client is not None:
                result.where = _run_dask(client, tasks, finished)
            else:
                result.where = _run_local(tasks, finished, workers)
        finally:
            bar.close()
            _write_index(out, rows, plan)

    result.index = _index_frame(rows, plan)
    result.table, units = collect_table(plan, runs_dir, [r for r in plan.runs if rows[r.run_id]["status"] == "ok"])
    write_table(out, result.table, units)
    meta = json.loads((out / META_JSON).read_text(encoding="utf-8"))
    meta["units"] = units
    meta["finished_utc"] = _now()
    write_json(out / META_JSON, meta)
    return result


# ------------------------------------------------------------------ executors
def local_workers(workers: int | None, pending: int) -> tuple[int, int]:
    """(pool size, numba threads per run) with pool x threads <= cores."""
    cores = _cores()
    n = workers if workers is not None else max(1, min(cores, pending))
    return n, max(1, cores // n)


def exit_with_parent(parent: int, every_s: float = 1.0) -> None:
    """Pool initializer: end this worker once ``parent`` (the process that started the pool) is gone.

    A worker of a spawn pool outlives a parent that is killed (``kill PID`` of a batch or a calibration, an
    out-of-memory kill) and would go on simulating, holding a core and writing output, until its run ends. A
    daemon thread polls the parent id every ``every_s`` seconds and ends the process when the worker has been
    handed to another parent. Ctrl-C needs none of this: it reaches the whole process group."""
    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(every_s)
        os._exit(1)

    threading.Thread(target=watch, name="exit-with-parent", daemon=True).start()


def fresh_process_pool(workers: int) -> ProcessPoolExecutor:
    """A pool that runs each task in a fresh spawned process (Mesa 3.3.1 keeps every model alive) whose
    workers end with this process (:func:`exit_with_parent`); the pool of ``abm batch`` and of the scripts."""
    return ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context("spawn"),
                               max_tasks_per_child=1, initializer=exit_with_parent, initargs=(os.getpid(),))


def _run_local(tasks: list[dict[str, Any]], finished: Callable[[dict], None], workers: int | None) -> str:
    n, threads = local_workers(workers, len(tasks))
    for task in tasks:
        task["threads"] = threads
    queue = deque(tasks)
    pool = fresh_process_pool(n)
    in_flight: dict[Any, dict[str, Any]] = {}
    try:
        while queue or in_flight:
            while queue and len(in_flight) < n:
                task = queue.popleft()
                in_flight[pool.submit(execute, task)] = task
            done, _ = wait(in_flight, return_when=FIRST_COMPLETED)
            broken = False
            for future in done:
                task = in_flight.pop(future)
                try:
                    res = future.result()
                except BrokenProcessPool:
                    broken = True
                    res = _failure(task, "worker process died while this run was in flight (killed, out of memory "
                                         "or crashed); rerun the batch to retry")
                except Exception as err:  # noqa: BLE001 - e.g. an unpicklable result
                    res = _failure(task, f"{type(err).__name__}: {err}")
                finished(res)
            if broken:
                for future, task in in_flight.items():
                    finished(_failure(task, "worker process died while this run was in flight (killed, out of "
                                            "memory or crashed); rerun the batch to retry"))
                in_flight.clear()
                pool.shutdown(wait=False, cancel_futures=True)
                pool = fresh_process_pool(n)
    except BaseException:
        for future in in_flight:
            future.cancel()
        for proc in list(getattr(pool, "_processes", {}).values()):  # our own children only
            proc.terminate()
        pool.shutdown(wait=False, cancel_futures=True)
        raise
    pool.shutdown(wait=True)
    return f"local pool of {n} worker(s) x {threads} numba thread(s)"


def connect_dask(cluster: str | None, scheduler_file: str | os.PathLike | None) -> Any:
    """A ``distributed.Client`` of the scheduler at ``cluster`` or in ``scheduler_file`` (UserError if unreachable)."""
    try:
        from distributed import Client
    except ImportError:  # pragma: no cover - a dependency
        raise UserError("--cluster: the 'distributed' package is not installed (pip install 'dask[distributed]')") from None
    what = f"--cluster {cluster}" if cluster else f"--scheduler-file {scheduler_file}"
    if scheduler_file is not None and not Path(scheduler_file).is_file():
        raise UserError(f"--scheduler-file: {scheduler_file} not found")
    try:
        return (Client(cluster, timeout=CONNECT_TIMEOUT) if cluster
                else Client(scheduler_file=str(scheduler_file), timeout=CONNECT_TIMEOUT))
    except (OSError, TimeoutError, ValueError) as err:
        raise UserError(f"{what}: cannot connect to the Dask scheduler ({' '.join(str(err).split())})") from None


def _run_dask(client: Any, tasks: list[dict[str, Any]], finished: Callable[[dict], None]) -> str:
    from distributed import as_completed

    futures = []
    try:
        client.wait_for_workers(1, timeout=60)
        workers = client.scheduler_info(n_workers=-1)["workers"] if _takes_n_workers(client) else \
            client.scheduler_info()["workers"]
        slots: Counter[str] = Counter()
        for info in workers.values():
            slots[str(info.get("host", ""))] += int(info.get("nthreads", 1))
        token = uuid.uuid4().hex[:8]
        futures = client.map(run_in_subprocess, tasks, slots_per_host=dict(slots), pure=False,
                             key=[f"abm-{t['run_id']}-{token}" for t in tasks])
        by_key = {f.key: t for f, t in zip(futures, tasks)}
        for future in as_completed(futures):
            try:
                res = future.result()
            except Exception as err:  # noqa: BLE001 - e.g. KilledWorker: recorded, the batch goes on
                res = _failure(by_key[future.key], f"{type(err).__name__}: {' '.join(str(err).split())}")
            finished(res)
        total = sum(slots.values())
        return f"Dask cluster of {len(workers)} worker(s), {total} slot(s)"
    except (OSError, TimeoutError) as err:
        raise UserError(f"lost the Dask scheduler ({' '.join(str(err).split())})") from None
    finally:
        if futures:
            client.cancel([f for f in futures if not f.done()])


def _takes_n_workers(client: Any) -> bool:
    import inspect

    return "n_workers" in inspect.signature(client.scheduler_info).parameters


def _failure(task: dict[str, Any], error: str) -> dict[str, Any]:
    return {"run_id": task["run_id"], "status": "failed", "error": " ".join(error.split()), "wall_time_s": None,
            "resumed": False}


# ------------------------------------------------------------------ files
def _index_row(run: PlannedRun, plan: Plan) -> dict[str, Any]:
    row: dict[str, Any] = {"run_id": run.run_id, "arm": run.arm, "arm_index": run.arm_index, "sample": run.sample,
                           "replicate": run.replicate, "seed": run.seed}
    row.update({key: param_value(run.params.get(key)) for key in plan.parameters})
    row.update(status="pending", error="", wall_time_s=None, finished_utc="", file="")
    return row


def _index_frame(rows: dict[str, dict[str, Any]], plan: Plan) -> pd.DataFrame:
    return pd.DataFrame([rows[r.run_id] for r in plan.runs])


def _write_index(out: Path, rows: dict[str, dict[str, Any]], plan: Plan) -> None:
    path = out / INDEX_CSV
    tmp = path.with_name(path.name + ".tmp")
    _index_frame(rows, plan).to_csv(tmp, index=False)
    os.replace(tmp, path)


def _write_meta(out: Path, plan: Plan, spec_path: str | os.PathLike) -> None:
    spec = plan.spec
    try:
        from abm.runner import _git_commit

        commit = _git_commit()
    except ImportError:  # pragma: no cover
        commit = ""
    write_json(out / META_JSON, {
        "name": spec.name,
        "description": spec.description,
        "spec_file": Path(spec_path).name,
        "spec": spec.model_dump(mode="json", by_alias=True),
        "spec_text": Path(spec_path).read_text(encoding="utf-8"),
        "arms": [{"name": a.name, "index": i, "scenario": a.scenario or spec.base, "set": list(spec.overrides) + a.overrides,
                  "description": a.description} for i, a in enumerate(spec.arms)],
        "parameters": plan.parameters,
        "sweep": spec.sweep.model_dump(mode="json") if spec.sweep else None,
        "samples": [{k: param_value(v) for k, v in s.items()} for s in plan.samples],
        "replicates": spec.replicates,
        "seed": spec.seed,
        "n_runs": len(plan.runs),
        "abm_version": __version__,
        "git_commit": commit,
        "python": sys.version.split()[0],
        "started_utc": _now(),
    })


def _stored_config(path: Path) -> str | None:
    try:
        with h5py.File(path, "r") as f:
            value = f["config"][()]
        return value.decode("utf-8") if isinstance(value, bytes) else str(value)
    except (OSError, KeyError):
        return None


def param_value(value: Any) -> Any:
    """A parameter value as a table cell: numbers stay numbers, anything else becomes text."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)) or value is None:
        return value
    if isinstance(value, str):
        return value
    return json.dumps(value)


def collect_table(plan: Plan, runs_dir: Path, runs: Iterable[PlannedRun]) -> tuple[pd.DataFrame, dict[str, str]]:
    """The tidy table of the given (complete) runs, in design order, and the metric units."""
    frames = []
    units: dict[str, str] = {"time_days": "d"}
    for run in runs:
        with open_run(runs_dir / f"{run.run_id}.h5") as opened:
            series = opened.timeseries
            for name, unit in opened.units.items():
                units.setdefault(name, unit)
        head = {"run_id": run.run_id, "arm": run.arm, "sample": run.sample}
        head.update({key: param_value(run.params.get(key)) for key in plan.parameters})
        head.update(replicate=run.replicate, seed=run.seed)
        frame = series.reset_index()
        for i, (key, value) in enumerate(head.items()):
            frame.insert(i, key, [value] * len(frame))
        frames.append(frame)
    if not frames:
        columns = ["run_id", "arm", "sample", *plan.parameters, "replicate", "seed", "time_days"]
        return pd.DataFrame(columns=columns), units
    table = pd.concat(frames, ignore_index=True)
    for column in ("sample", "replicate", "seed"):
        table[column] = table[column].astype("int64")
    for key in plan.parameters:
        if not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in table[key]):
            table[key] = table[key].astype(str)
    return table, units


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def describe_exit(n_failed: int) -> int:
    """Exit status of ``abm batch``: the number of failed runs, capped at 125."""
    return min(int(n_failed), 125)


__all__ = ["BatchResult", "collect_table", "describe_exit", "local_workers", "run_batch"]

"""Pool workers end with the process that started them (abm batch and the calibration scripts)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

# The parent: the pool of abm batch and the scripts (fresh_process_pool: spawn, one task per process, the
# initializer) or, unwatched, the same pool without the initializer. Its one task is a shell that reports the
# worker's pid (the shell's parent) and its own, then sleeps a minute in the worker's stead; the test kills the
# parent (SIGKILL: no clean-up of its own) and watches the worker.
PARENT = textwrap.dedent("""
    import multiprocessing, os, sys, time
    from concurrent.futures import ProcessPoolExecutor
    from abm.batch.execute import fresh_process_pool

    if __name__ == "__main__":
        if sys.argv[1] == "watched":
            pool = fresh_process_pool(1)
        else:
            pool = ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn"), max_tasks_per_child=1)
        pool.submit(os.system, "echo $PPID $$; exec sleep 60")
        time.sleep(60)
""")


def _running(pid: int) -> bool:
    """The process exists and has not exited (a zombie that no init reaps counts as exited)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return False
    return state != "Z"


def _worker_after_parent_killed(mode: str, wait_s: float) -> tuple[int, bool]:
    parent = subprocess.Popen([sys.executable, "-c", PARENT, mode], stdout=subprocess.PIPE, text=True)
    sleeper = None
    try:
        worker, sleeper = map(int, parent.stdout.readline().split())
        assert _running(worker)
        parent.send_signal(signal.SIGKILL)
        parent.wait()
        deadline = time.monotonic() + wait_s
        while _running(worker) and time.monotonic() < deadline:
            time.sleep(0.05)
        return worker, _running(worker)
    finally:
        parent.kill()
        if sleeper is not None and _running(sleeper):
            os.kill(sleeper, signal.SIGKILL)  # the task's shell, which no worker waits for any more


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads process states from /proc (Linux)")
def test_a_worker_ends_when_its_parent_is_killed_and_without_the_initializer_it_would_not():
    worker, alive = _worker_after_parent_killed("watched", wait_s=5.0)
    assert not alive, f"worker {worker} still running 5 s after its parent was killed"
    worker, alive = _worker_after_parent_killed("unwatched", wait_s=1.0)
    try:
        assert alive  # the orphan a plain spawn pool leaves behind: what the initializer is for
    finally:
        if alive:
            os.kill(worker, signal.SIGKILL)

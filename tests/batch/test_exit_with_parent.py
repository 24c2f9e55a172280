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

# The parent: a spawn pool of one worker with the initializer, which reports the worker's pid and then gives
# it a minute of work; the test kills the parent (SIGKILL: no clean-up of its own) and watches the worker.
PARENT = textwrap.dedent("""
    import os, sys, time
    from concurrent.futures import ProcessPoolExecutor
    from multiprocessing import get_context
    from abm.batch.execute import exit_with_parent

    if __name__ == "__main__":
        watched = sys.argv[1] == "watched"
        extra = dict(initializer=exit_with_parent, initargs=(os.getpid(), 0.05)) if watched else {}
        pool = ProcessPoolExecutor(1, mp_context=get_context("spawn"), **extra)
        print(pool.submit(os.getpid).result(), flush=True)
        pool.submit(time.sleep, 60)
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
    try:
        worker = int(parent.stdout.readline())
        assert _running(worker)
        parent.send_signal(signal.SIGKILL)
        parent.wait()
        deadline = time.monotonic() + wait_s
        while _running(worker) and time.monotonic() < deadline:
            time.sleep(0.05)
        return worker, _running(worker)
    finally:
        parent.kill()


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

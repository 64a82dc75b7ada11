"""Creating IREE HAL devices without letting the driver's busy-waiting threads starve the work.

IREE's Vulkan HAL (3.13) learns that queue work finished on watcher threads that call
`vkWaitSemaphores` with `VK_SEMAPHORE_WAIT_ANY_BIT` over several timeline semaphores. Mesa's
lavapipe (22.3 in Debian 12, 25.0 in its backports) cannot wait for any one of several syncs
and polls them in a loop instead, so each watcher keeps a core busy for as long as the device
is open, idle or not: on this 2-core host an open lavapipe device used 2.0 cores doing
nothing. The shaders themselves run on lavapipe's own threads, which then got what the
spinners left; kernel times came in multiples of the 4 ms scheduler tick (a 16 MB GEMV took
2 to 16 ms, median 8) and anything else in the process, the CPU target included, ran slower.

`create_device` starts the device and moves every thread it started that is still runnable
while the device has no work (a waiting thread sleeps) to `SCHED_IDLE`: the spinners then run
only on cores nothing else wants, which is also when a completion is there to be noticed.
Lowering a thread's own priority needs no privilege. Threads that sleep when idle (lavapipe's
workers, CUDA's) are left alone, so on drivers that wait properly this changes nothing.
Needs only iree.runtime, so the bench's artifact runner can use it on GPU machines.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

_TASKS = Path("/proc/self/task")
SAMPLES, SAMPLE_GAP_S = 5, 0.002  # a spinner is runnable at every look; a sleeper is not


def create_device(driver: str, device_id=None):
    """A HAL device of `driver` (`device_id` from `query_available_devices`, else the
    default one), with any busy-waiting threads it started demoted to SCHED_IDLE."""
    import iree.runtime as rt

    before = _threads()
    drv = rt.get_driver(driver)
    device = drv.create_default_device() if device_id is None else drv.create_device(device_id)
    demote_spinners(_threads() - before)
    return device


def spinners(tids: set[int]) -> set[int]:
    """Those of `tids` that stay runnable over `SAMPLES` looks `SAMPLE_GAP_S` apart."""
    spinning = {t for t in tids if _runnable(t)}
    for _ in range(SAMPLES - 1):
        if not spinning:
            break
        time.sleep(SAMPLE_GAP_S)
        spinning = {t for t in spinning if _runnable(t)}
    return spinning


def demote_spinners(tids: set[int]) -> list[int]:
    """Moves the `spinners` among `tids` to SCHED_IDLE; returns them. No-op where the
    platform has no /proc or no SCHED_IDLE."""
    if not hasattr(os, "SCHED_IDLE"):
        return []
    demoted = []
    for tid in sorted(spinners(tids)):
        try:
            os.sched_setscheduler(tid, os.SCHED_IDLE, os.sched_param(0))
            demoted.append(tid)
        except OSError:  # the thread ended meanwhile
            pass
    return demoted


def _threads() -> set[int]:
    try:
        return {int(t) for t in os.listdir(_TASKS)}
    except OSError:
        return set()


def _runnable(tid: int) -> bool:
    try:
        stat = (_TASKS / str(tid) / "stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] == "R"  # the name may hold spaces and parens

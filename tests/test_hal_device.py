"""Busy-waiting driver threads are demoted to SCHED_IDLE; sleeping ones are left alone."""

import hashlib
import os
import threading
import time

import pytest

from agentc.devices import hal_device
from tests.conftest import VULKAN

pytestmark = pytest.mark.skipif(not hasattr(os, "SCHED_IDLE"), reason="needs Linux SCHED_IDLE")


def _spin(stop: threading.Event, ids: list):
    ids.append(threading.get_native_id())
    while not stop.is_set():  # ~10 ms of hashing per call, all of it without the GIL
        hashlib.pbkdf2_hmac("sha256", b"agentc", b"salt", 20_000)


def _sleep(stop: threading.Event, ids: list):
    ids.append(threading.get_native_id())
    stop.wait()


def test_a_thread_that_stays_runnable_is_demoted_and_a_sleeping_one_is_not():
    stop, spinner, sleeper = threading.Event(), [], []
    threads = [threading.Thread(target=_spin, args=(stop, spinner), daemon=True),
               threading.Thread(target=_sleep, args=(stop, sleeper), daemon=True)]
    for t in threads:
        t.start()
    try:
        while len(spinner) + len(sleeper) < 2:
            time.sleep(0.001)
        time.sleep(0.02)
        demoted = hal_device.demote_spinners({spinner[0], sleeper[0]})
        assert demoted == spinner
        assert os.sched_getscheduler(spinner[0]) == os.SCHED_IDLE
        assert os.sched_getscheduler(sleeper[0]) == os.SCHED_OTHER
    finally:
        stop.set()
        for t in threads:
            t.join()


@VULKAN
def test_an_open_vulkan_device_leaves_no_busy_thread_at_normal_priority():
    """On lavapipe IREE's completion watchers poll for as long as the device is open; each
    one that is runnable while the device has no work must be SCHED_IDLE."""
    import iree.runtime as rt

    before = hal_device._threads()
    device = hal_device.create_device("vulkan")
    try:
        busy = hal_device.spinners(hal_device._threads() - before)
        assert all(os.sched_getscheduler(t) == os.SCHED_IDLE for t in busy), busy
        name = rt.get_driver("vulkan").query_available_devices()[0]["name"]
        assert busy or "llvmpipe" not in name  # lavapipe's watchers spin: there are some
    finally:
        del device


def test_a_device_lost_while_its_module_loads_is_opened_again(builds, monkeypatch, capfd):
    """The Vulkan spec's recovery from VK_ERROR_DEVICE_LOST is a new logical device: a loss
    during module load opens the device once more, and the session then answers as one
    that loaded at the first try; a second loss is the load's error."""
    import iree.runtime as rt

    import agentc
    from agentc.runtime.host_ops import BuildError

    build = builds("rag_agent.py", ("cpu",)).build_dir
    query = {"query": "What is 12 * 7?"}
    with agentc.load(build) as s:
        reference = s.run(query)["outputs"]
    real, losses = rt.VmContext, []

    def flaky(*args, **kwargs):
        if len(losses) < budget[0]:
            losses.append(1)
            raise RuntimeError("Error creating vm context with modules: queue.c:2867: DATA_LOSS; "
                               "[vkSignalSemaphore] VK_ERROR_DEVICE_LOST; while invoking native function hal.fence.await")
        return real(*args, **kwargs)

    budget = [1]
    monkeypatch.setattr(rt, "VmContext", flaky)
    with agentc.load(build) as s:
        assert s.run(query)["outputs"] == reference
    assert losses == [1] and "was lost while its module loaded" in capfd.readouterr().err
    budget[0], losses[:] = 2, []
    with pytest.raises(BuildError, match="VK_ERROR_DEVICE_LOST"):
        agentc.load(build)

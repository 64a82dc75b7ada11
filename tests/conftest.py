import contextlib
import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples"


def _has_vulkan() -> bool:
    from agentc.devices import usable

    return "vulkan" in usable()


VULKAN = pytest.mark.skipif(not _has_vulkan(), reason="no Vulkan device (install mesa-vulkan-drivers)")
GRAPHS = Path(__file__).with_name("graphs")


def agentc_cli(*args, timeout=600, env=None):
    """Run the CLI as a user would; returns CompletedProcess with text output. `env` adds to
    this process's environment."""
    return subprocess.run([sys.executable, "-m", "agentc.cli", *map(str, args)], capture_output=True,
                          text=True, timeout=timeout, cwd=ROOT, check=False,
                          env={**os.environ, **env} if env else None)


@pytest.fixture(scope="session")
def defaults_catalog(tmp_path_factory) -> str:
    """The device catalog without calibration profiles: datasheet-style defaults, under
    which lavapipe is worth using. The measured lavapipe profile of a loaded 2-core
    machine prices it out of most placements, which would leave nothing to overlap."""
    from agentc.cost.catalog import CATALOG_PATH

    text = "\n".join(ln for ln in CATALOG_PATH.read_text().splitlines() if "profile:" not in ln
                     and "cores:" not in ln)  # (lavapipe and the cpu device as if on separate hardware)
    path = tmp_path_factory.mktemp("catalog") / "catalog.yaml"
    path.write_text(text)
    return str(path)


@pytest.fixture(scope="session")
def builds(tmp_path_factory):
    """Compile once per device set and reuse across tests."""
    import agentc

    cache = {}

    def get(graph: str, devices: tuple[str, ...], **opts):
        key = (graph, devices, tuple(sorted(opts.items())))
        if key not in cache:
            out = tmp_path_factory.mktemp(Path(graph).stem)
            cache[key] = agentc.compile(str(EXAMPLES / graph), str(out), devices=list(devices), quiet=True, **opts)
        return cache[key]

    return get


@contextlib.contextmanager
def served(serve_fn, *args, **kwargs):
    """Run `serve_fn(*args, port=..., stop=..., ready=..., **kwargs)` (agentc's serve_build or
    serve_staged) on a thread; yields the URL once it answers, stops it on the way out."""
    from agentc.distributed.local_cluster import free_port

    stop, up, failed = threading.Event(), threading.Event(), []
    port = free_port()

    def run():
        try:
            serve_fn(*args, port=port, stop=stop, ready=lambda url: up.set(), **kwargs)
        except BaseException as e:  # noqa: BLE001 - reported in the caller's thread
            failed.append(e)
            up.set()

    t = threading.Thread(target=run)
    t.start()
    up.wait(300)
    assert not failed, failed
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        stop.set()
        t.join(120)
        assert not t.is_alive()


def stage_metric(url: str, name: str) -> dict[str, float]:
    """A staged service's per-stage metric from its /metrics: {stage: value}."""
    import urllib.request

    from agentc.serving.stage_metrics import read_stage_metric

    return read_stage_metric(urllib.request.urlopen(url + "/metrics", timeout=10).read().decode(), name)

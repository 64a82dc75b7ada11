"""The cache is a content-addressed store: nothing in it or in a build changes because
another build was written to, a corrupt object is evicted and rebuilt, and a build that
changed after compile is refused at load (agentc/runtime/verify.py)."""

import hashlib
import json
import os
import time

import pytest
from conftest import EXAMPLES, agentc_cli

import agentc
from agentc import store, store_maintenance
from agentc.runtime.host_ops import BuildError


def _tree_hashes(root):
    """sha256 of every file under root, read from disk (not through the store's memo)."""
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file() and "verified" not in p.parts}


@pytest.fixture
def cache(tmp_path, monkeypatch):
    root = tmp_path / "cache"
    monkeypatch.setenv("AGENTC_CACHE", str(root))
    return root


def _compile(graph, out):
    return agentc.compile(str(EXAMPLES / graph), str(out), devices=["cpu"], quiet=True)


def test_writing_a_builds_archive_changes_nothing_else(cache, tmp_path):
    """Written through by whoever runs agentc (root in CI: file modes do not stop root), one
    build's weights archive is its own: the cache and another build of the same weights are
    unchanged and still verify, and the written build is refused at load."""
    _compile("rag_agent.py", tmp_path / "a")
    _compile("rag_agent.py", tmp_path / "b")
    archive = tmp_path / "a" / "weights" / "tiny-lm.irpa"
    assert archive.stat().st_ino != (tmp_path / "b" / "weights" / "tiny-lm.irpa").stat().st_ino
    before_cache, before_b = _tree_hashes(cache), _tree_hashes(tmp_path / "b")
    with open(archive, "r+b") as f:  # in place, same size: the inode is kept
        f.seek(archive.stat().st_size // 2)
        f.write(b"\xff" * 64)
    assert _tree_hashes(cache) == before_cache
    assert _tree_hashes(tmp_path / "b") == before_b
    assert store_maintenance.verify(full=True).corrupt == []
    with pytest.raises(BuildError, match=r"weights/tiny-lm.irpa: changed since the build was written.*recompile"):
        agentc.load(tmp_path / "a")
    with agentc.load(tmp_path / "b") as s:
        assert s.run({"query": "What is 2 + 3?"})["outputs"][0].endswith("[2 + 3 = 5]")


def test_truncated_archive_is_refused_and_recompile_heals(cache, tmp_path):
    _compile("fanout_agent.py", tmp_path / "a")
    archive = tmp_path / "a" / "weights" / "tiny-lm.irpa"
    os.truncate(archive, 1000)
    r = agentc_cli("run", tmp_path / "a", "--input", "query=x", env={"AGENTC_CACHE": str(cache)})
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert r.stderr.strip().splitlines() == [r.stderr.strip()]
    assert "tiny-lm.irpa: changed since the build was written" in r.stderr
    _compile("fanout_agent.py", tmp_path / "a")  # the cache was not touched: recompiling heals
    with agentc.load(tmp_path / "a") as s:
        assert len(s.run({"query": "x"})["outputs"]) == 1


def test_corrupt_cache_object_is_evicted_and_rebuilt(cache, tmp_path, capfd):
    _compile("fanout_agent.py", tmp_path / "a")
    manifest = json.loads((tmp_path / "a" / "manifest.json").read_text())
    sha = manifest["files"]["weights/tiny-lm.irpa"]
    obj = next((cache / "objects" / sha[:2]).glob(f"{sha}*"))
    assert obj.stat().st_mode & 0o222 == 0  # read-only (which root ignores)
    os.chmod(obj, 0o644)
    with open(obj, "r+b") as f:
        f.seek(4096)
        f.write(b"\x00" * 16)
    capfd.readouterr()
    _compile("fanout_agent.py", tmp_path / "b")
    assert f"cache object {obj} is corrupt; evicted" in capfd.readouterr().err
    assert store_maintenance.verify(full=True).corrupt == []
    assert json.loads((tmp_path / "b" / "manifest.json").read_text())["files"]["weights/tiny-lm.irpa"] == sha
    with agentc.load(tmp_path / "b") as s:
        assert len(s.run({"query": "x"})["outputs"]) == 1


def test_cache_verify_finds_and_evicts_corruption(cache, tmp_path):
    _compile("fanout_agent.py", tmp_path / "a")
    objs = sorted(p for p in (cache / "objects").rglob("*") if p.is_file())
    victim = objs[0]
    os.chmod(victim, 0o644)
    victim.write_bytes(victim.read_bytes()[:-1] + b"!")
    env = {"AGENTC_CACHE": str(cache)}
    r = agentc_cli("cache", "verify", env=env)
    assert r.returncode == 1 and f"corrupt: {victim}" in r.stdout, r.stdout + r.stderr
    assert not victim.exists()
    r = agentc_cli("cache", "verify", env=env)
    assert r.returncode == 0 and "0 corrupt" in r.stdout
    (cache / "vmfb").mkdir()  # an older agentc's layout
    (cache / "vmfb" / "cpu-0123.vmfb").write_bytes(b"old")
    kept = sorted(p for p in (cache / "objects").rglob("*") if p.is_file())
    r = agentc_cli("cache", "gc", env=env)
    assert r.returncode == 0, r.stderr
    assert not (cache / "vmfb").exists()
    assert sorted(p for p in (cache / "objects").rglob("*") if p.is_file()) == kept  # all still referenced
    r = agentc_cli("cache", "clear", env=env)
    assert r.returncode == 0 and not cache.exists()


def test_memo_sees_a_same_size_rewrite_with_its_mtime_put_back(cache, tmp_path):
    """The memo is keyed by (device, inode, size, mtime, ctime): restoring the mtime after
    writing the same number of bytes does not hide the change (ctime cannot be set)."""
    f = tmp_path / "data.bin"
    sha = store.write_file(f, b"a" * 4096)
    store.remember_all({f: sha})
    assert store.verified_sha256(f) == sha
    st = f.stat()
    time.sleep(0.01)
    with open(f, "r+b") as fh:
        fh.write(b"b")
    os.utime(f, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert f.stat().st_size == st.st_size and f.stat().st_mtime_ns == st.st_mtime_ns
    assert store.verified_sha256(f) == hashlib.sha256(b"b" + b"a" * 4095).hexdigest()


def test_manifest_that_is_not_json_is_refused(cache, tmp_path):
    _compile("fanout_agent.py", tmp_path / "a")
    (tmp_path / "a" / "manifest.json").write_text("{not json")
    with pytest.raises(BuildError, match=r"manifest.json: not valid JSON \(line 1: .*recompile the agent"):
        agentc.load(tmp_path / "a")
    (tmp_path / "a" / "manifest.json").unlink()
    with pytest.raises(BuildError, match=r"no manifest.json: the build is incomplete"):
        agentc.load(tmp_path / "a")

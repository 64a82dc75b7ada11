"""Check a build directory against its manifest before anything in it is loaded or run.

A build whose plan, modules, weights, graph.py, corpora or tokenizers changed after compile
would still run, and answer differently: silently wrong. So a session refuses it, naming the
file and what to do. Every file the manifest lists is hashed once per file identity
(agentc.store's memo), so loading an unchanged build costs a stat per file, not a read of
hundreds of MB of weights.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from agentc import store
from agentc.runtime.host_ops import BuildError

SHA = re.compile(r"[0-9a-f]{64}")


def _recompile(build: Path, manifest: dict | None = None) -> str:
    graph = (manifest or {}).get("graph") if isinstance(manifest, dict) else None
    return f"recompile the agent (agentc compile {graph or 'GRAPH.py'} -o {build})"


def read_json(path: Path, build: Path, what: str) -> dict:
    """A build's JSON file, or a BuildError naming it and the fault."""
    try:
        data = json.loads(path.read_bytes().decode("utf-8"))
    except FileNotFoundError:
        raise BuildError(f"{path}: missing; the build is incomplete: {_recompile(build)}") from None
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        where = f"line {e.lineno}: {e.msg}" if isinstance(e, json.JSONDecodeError) else "not UTF-8 text"
        raise BuildError(f"{path}: not valid JSON ({where}); the build is damaged: "
                         f"{_recompile(build)}") from None
    except OSError as e:
        raise BuildError(f"{path}: cannot read {what} ({e.strerror})") from None
    if not isinstance(data, dict):
        raise BuildError(f"{path}: expected a JSON object; the build is damaged: {_recompile(build)}")
    return data


def verify_build(build: Path, verify: bool = True) -> dict:
    """The build's manifest, after checking (with `verify`) that every file it lists holds
    the bytes it was written with."""
    if not build.is_dir():
        raise BuildError(f"{build}: not a build directory (no such directory)")
    if not (build / "manifest.json").is_file():
        if (build / "plan.json").is_file():
            raise BuildError(f"{build}: no manifest.json: the build is incomplete (an interrupted compile?) "
                             f"or from an older agentc: {_recompile(build)}")
        raise BuildError(f"{build}: not a build directory (no plan.json)")
    manifest = read_json(build / "manifest.json", build, "the manifest")
    files = manifest.get("files")
    if not (isinstance(files, dict) and "plan.json" in files
            and all(isinstance(v, str) and SHA.fullmatch(v) for v in files.values())):
        raise BuildError(f"{build / 'manifest.json'}: field 'files': expected {{file: sha256}} listing plan.json; "
                         f"the build is damaged: {_recompile(build, manifest)}")
    if not verify:
        return manifest
    paths = []
    for rel in files:
        path = build / rel
        if ".." in Path(rel).parts or not path.is_file():
            raise BuildError(f"{path}: missing (listed in manifest.json): {_recompile(build, manifest)}")
        paths.append(path)
    try:
        got = store.hash_files(paths)
    except OSError as e:
        raise BuildError(f"{e.filename}: cannot read ({e.strerror})") from None
    for path, want, sha in zip(paths, files.values(), got):
        if sha != want:
            raise BuildError(f"{path}: changed since the build was written (its sha256 is not the one in "
                             f"manifest.json): {_recompile(build, manifest)}")
    return manifest

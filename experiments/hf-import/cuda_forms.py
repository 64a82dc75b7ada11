"""Do the CUDA kernel forms still pay for the generic import? (agentc.models.forms: per-head
decode attention and transposed linear layers, applied to transformers' code for the cuda
runtime; measured to pay for the hand-written models on an H200.)

The operators of `agentc bench batching` (a MiniLM-L6 block, SmolLM2-135M's decode step and
prefill through the generic import, the vector search) at batch 1 and 4, compiled for CUDA
twice: in the runtime's forms, and in the default forms (named `<operator>.default`), into
one artifact directory, so that both are timed interleaved in one run. Here:

    python experiments/hf-import/cuda_forms.py .device/forms

On the GPU machine (numpy and the IREE runtime only):

    python -m agentc.bench.batching_run .device/forms/both --out OUT
"""

from __future__ import annotations

import argparse
from pathlib import Path

from agentc.bench import batching


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("out", type=Path)
    p.add_argument("--batches", default="1,4")
    args = p.parse_args()
    batching.BATCHES = tuple(int(b) for b in args.batches.split(","))
    batching.compile_artifacts("cuda", args.out / "runtime", quick=True)
    from agentc.models.hf.imported import Imported

    Imported.RUNTIME_FORMS = {}  # every runtime in the default forms (and export cache keys that say so)
    batching.compile_artifacts("cuda", args.out / "default", quick=True)
    _merge(args.out)


def _merge(out: Path) -> None:
    """One artifact directory holding both sets; the default forms' kernels renamed."""
    import json
    import shutil

    both = out / "both"
    shutil.rmtree(both, ignore_errors=True)
    both.mkdir()
    manifest = json.loads((out / "runtime" / "manifest.json").read_text())
    default = json.loads((out / "default" / "manifest.json").read_text())
    for k in manifest["kernels"]:
        shutil.copy(out / "runtime" / k["file"], both / k["file"])
    for k in default["kernels"]:
        if k["name"] in ("similarity", "top3"):  # no form of theirs differs
            continue
        shutil.copy(out / "default" / k["file"], both / f"default-{k['file']}")
        manifest["kernels"].append(k | {"name": f"{k['name']}.default", "file": f"default-{k['file']}"})
    (both / "manifest.json").write_text(json.dumps(manifest) + "\n")


if __name__ == "__main__":
    main()

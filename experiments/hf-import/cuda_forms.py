"""Do the CUDA kernel forms still pay for the generic import? (agentc.models.forms: per-head
decode attention and transposed linear layers, applied to transformers' code for the cuda
runtime; measured to pay for the hand-written models on an H200.)

The operators of `agentc bench batching` (a MiniLM-L6 block, SmolLM2-135M's decode step and
prefill through the generic import, the vector search) at batch 1 and 4, compiled for CUDA
twice: in the runtime's forms, and in the default forms. Here:

    python experiments/hf-import/cuda_forms.py .device/forms

On the GPU machine (numpy and the IREE runtime only), each set measured the same way:

    python -m agentc.bench.batching_run .device/forms/runtime --out OUT/runtime
    python -m agentc.bench.batching_run .device/forms/default --out OUT/default
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
    batching._in_form = lambda model, runtime: model  # every runtime in the default forms
    batching.compile_artifacts("cuda", args.out / "default", quick=True)


if __name__ == "__main__":
    main()

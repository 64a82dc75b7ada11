"""Does the hand-written SmolLM (agentc/models/smollm.py) still pay on this CPU against the
generic import of the same architecture (transformers' LlamaDecoderLayer, agentc/models/hf)?

Both at SmolLM2-135M's shape with random weights, the RAG's budget (prompt 192, cache 256),
step granularity, compiled for this CPU; per operator medians from the session trace over
several requests (prefill, one decode step, sample). The two have different random
weights, so their tokens differ; the operators' shapes do not.

    python experiments/hf-import/handwritten_vs_generic.py [--requests 4]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import textwrap
from pathlib import Path

import agentc
from agentc.models.hf import random_checkpoint as rc

PROMPT = "Explain in one sentence what a compiler does, and why it matters for fast programs."


def _graph(path: Path, model: str) -> Path:
    path.write_text(textwrap.dedent(f"""
        import agentc

        @agentc.agent(sla_ms=60000)
        def chat(query):
            return agentc.llm(query, model={model!r}, max_tokens=16, name="answer", granularity="step",
                              prompt_len=192, cache_len=256)
        """))
    return path


def _per_operator(build: Path, requests: int) -> dict[str, float]:
    """Median ms of prefill, decode steps and samples over the requests (the first one warms)."""
    times: dict[str, list[float]] = {"prefill": [], "decode": [], "sample": []}
    with agentc.load(build) as s:
        s.run({"query": PROMPT})
        mark = len(s.trace.events)
        for _ in range(requests):
            s.run({"query": PROMPT})
        for _, name, _, start, end, _ in list(s.trace.events)[mark:]:
            op = name.split("/", 1)[-1].rstrip("0123456789")
            if op in times:
                times[op].append((end - start) * 1e3)
    return {k: statistics.median(v) for k, v in times.items() if v}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--requests", type=int, default=4)
    args = p.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        model_dir = rc.write("llama", tmp / "llama", rc.SMOLLM2_135M)
        rows = {}
        for label, model in (("hand-written smollm2-135m-random", "smollm2-135m-random"),
                             ("generic LlamaForCausalLM", str(model_dir))):
            build = tmp / label.split()[0]
            agentc.compile(str(_graph(tmp / f"{build.name}.py", model)), str(build), devices=["cpu"], quiet=True)
            rows[label] = _per_operator(build, args.requests)
    print(f"{'model':<34} {'prefill ms':>10} {'decode ms':>10} {'sample ms':>10}")
    for label, r in rows.items():
        print(f"{label:<34} {r['prefill']:>10.1f} {r['decode']:>10.2f} {r['sample']:>10.3f}")
    hand, gen = rows.values()
    print(f"generic / hand-written: prefill {gen['prefill'] / hand['prefill']:.2f}, "
          f"decode {gen['decode'] / hand['decode']:.2f}")


if __name__ == "__main__":
    main()

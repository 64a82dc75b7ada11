"""Per-operator time of one imported LLM on this CPU: a random checkpoint of `ARCH` at
SmolLM2-135M's shape, compiled, three requests (16 tokens); medians of the session trace
per operator name.

    python experiments/hf-import/per_operator.py gpt2 [layer]   (granularity: step by default)
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import textwrap
from pathlib import Path

import agentc
from agentc.models.hf import random_checkpoint as rc


def _layerless(op: str) -> str:
    """decode12/l3 -> decode/l, decode12 -> decode: one row per kind of operator."""
    import re

    return re.sub(r"\d+", "", op)


def main() -> None:
    arch = sys.argv[1] if len(sys.argv) > 1 else "llama"
    granularity = sys.argv[2] if len(sys.argv) > 2 else "step"
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        d = rc.write(arch, tmp / arch, rc.SMOLLM2_135M)
        g = tmp / "graph.py"
        g.write_text(textwrap.dedent(f"""
            import agentc

            @agentc.agent(sla_ms=60000)
            def chat(query):
                return agentc.llm(query, model={str(d)!r}, max_tokens=16, name="answer",
                                  granularity={granularity!r})
            """))
        agentc.compile(str(g), str(tmp / "build"), devices=["cpu"], quiet=True)
        times: dict[str, list[float]] = {}
        with agentc.load(tmp / "build") as s:
            s.run({"query": "Explain what a compiler does."})
            mark = len(s.trace.events)
            for _ in range(2):
                s.run({"query": "Explain what a compiler does."})
            for _, name, _, start, end, _ in list(s.trace.events)[mark:]:
                op = name.split("/", 1)[-1]
                times.setdefault(_layerless(op), []).append((end - start) * 1e3)
    for op, v in times.items():
        print(f"{arch} {op}: median {statistics.median(v):.2f} ms over {len(v)}")


if __name__ == "__main__":
    main()

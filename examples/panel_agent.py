"""A panel: SmolLM2-135M answers one question from four perspectives in parallel LLM calls,
then a fifth call merges the answers into one reply. The fan-out of a multi-agent
workflow, with real models (the tiny-model version is fanout_agent.py).

    python examples/panel_agent.py "Should a small city build a tram line?"

AGENTC_RANDOM_WEIGHTS=1 swaps in the same architecture with seeded random weights.
"""

import os
import sys

import agentc

LLM = "smollm2-135m" + ("-random" if os.environ.get("AGENTC_RANDOM_WEIGHTS") == "1" else "")
PERSPECTIVES = ["an engineer", "an economist", "a historian", "a resident"]


@agentc.agent(sla_ms=30000)
def panel(question):
    def ask(who):
        prompt = agentc.format("Answer as {who} would, in one sentence: {q}", who=who, q=question)
        return agentc.llm(prompt, model=LLM, max_tokens=24, prompt_len=64, cache_len=128)

    views = agentc.fanout(ask, PERSPECTIVES, reduce=lambda outs: agentc.join(outs, "\n", name="views"))
    merged = agentc.format("Merge these views into one balanced answer of two sentences:\n{v}", v=views, name="merge")
    return agentc.llm(merged, model=LLM, max_tokens=32, name="reply", prompt_len=192, cache_len=256)


if __name__ == "__main__":
    placement = agentc.compile(__file__, "build/panel_agent", devices=["cpu"], quiet=True)
    with agentc.load(placement.build_dir) as session:
        for q in sys.argv[1:] or ["Should a small city build a tram line?"]:
            print(session.run({"question": q})["outputs"][0])

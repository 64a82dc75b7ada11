"""Fan-out: one question answered from several perspectives by parallel LLM calls, then
joined and summarised."""

import agentc

PERSPECTIVES = ["an engineer", "a historian", "a economist", "a poet", "a doctor", "a lawyer"]


@agentc.agent(sla_ms=3000)
def panel(query):
    def ask(who):
        prompt = agentc.format("As {who}, answer briefly: {q}", who=who, q=query)
        return agentc.llm(prompt, model="tiny-lm", max_tokens=8)

    views = agentc.fanout(ask, PERSPECTIVES, reduce=lambda outs: agentc.join(outs, "\n", name="views"))
    summary = agentc.llm(agentc.format("Summarise:\n{0}", views), model="tiny-lm", max_tokens=8, name="summary")
    return agentc.format("{0}\n--\n{1}", views, summary, name="reply")

"""Retrieval-augmented answering: tokenize -> embed -> vector search -> LLM, with a
calculator tool that runs only when the question contains arithmetic."""

import re

import agentc

corpus = agentc.VectorIndex("facts", "corpus.txt", encoder="tiny-encoder")


def calculator(question: str) -> str:
    m = re.search(r"(\d+)\s*([-+*/])\s*(\d+)", question)
    a, op, b = int(m.group(1)), m.group(2), int(m.group(3))
    value = {"+": a + b, "-": a - b, "*": a * b, "/": a / b if b else float("nan")}[op]
    return f"{m.group(0)} = {value}"


@agentc.agent(sla_ms=2000)
def rag(query):
    ids = agentc.tokenize(query, model="tiny-encoder", name="tokenize_query")
    vec = agentc.embed(ids, model="tiny-encoder", name="embed_query")
    hits = agentc.vector_search(vec, corpus, k=3, name="retrieve")
    context = agentc.passages(hits, corpus, name="context")
    arithmetic = agentc.contains(query, r"\d+\s*[-+*/]\s*\d+", name="has_arithmetic")
    note = agentc.cond(
        arithmetic,
        lambda: agentc.tool(calculator, query, latency_ms=1, timeout_ms=500, name="calculator"),
        lambda: "no calculation needed",
        name="maybe_calculate",
    )
    prompt = agentc.format("Context:\n{ctx}\nNote: {note}\nQuestion: {q}\nAnswer:",
                           ctx=context, note=note, q=query, name="prompt")
    answer = agentc.llm(prompt, model="tiny-lm", max_tokens=12, name="answer")
    return agentc.format("{0}\n[{1}]", answer, note, name="reply")

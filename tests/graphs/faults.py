"""An agent whose tool misbehaves on request: the query names the fault. Everything else
(embedding, search, the LLM) is the tiny RAG's, so a good request exercises compute too."""

import functools
import sys
import time

import agentc

corpus = agentc.VectorIndex("facts", "../../examples/corpus.txt", encoder="tiny-encoder")


def lookup(q: str, mode: str = "") -> str:
    if "raise" in q:
        raise ValueError("the lookup service is down")
    if "slow" in q:
        time.sleep(0.5)
    if "hang" in q:
        time.sleep(3600)  # past every test's end: as good as never
    if "none" in q:
        return None
    if "bytes" in q:
        return b"\xff\xfe"
    if "number" in q:
        return 42
    if "exit" in q:
        sys.exit(3)
    return f"looked up {len(q)} chars{mode}"


@agentc.agent(sla_ms=2000)
def faults(query):
    hits = agentc.vector_search(agentc.embed(agentc.tokenize(query)), corpus, k=2)
    found = agentc.tool(functools.partial(lookup, mode="!"), query, timeout_ms=300)
    note = agentc.tool(lambda q: q.upper(), query, timeout_ms=300)
    prompt = agentc.format("{0}\n{1}\n{2}\nQ: {3}", agentc.passages(hits, corpus), found, note, query)
    return agentc.llm(prompt, model="tiny-lm", max_tokens=6)

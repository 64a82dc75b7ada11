"""The real RAG agent (examples/rag_agent_real.py) with a 3-billion-parameter LLM: Llama-3.2-3B's
architecture given by its config.json alone (`llama3.2-3b-config`, no weights). It is placed
and priced (agentc place, agentc study tco), never compiled: its f32 weights are 12.9 GB.
"""

import agentc

ENCODER, LLM = "minilm-l6", "llama3.2-3b-config"

knowledge = agentc.VectorIndex("knowledge", "../knowledge.txt", encoder=ENCODER)


@agentc.agent(sla_ms=10000)
def rag_3b(query):
    ids = agentc.tokenize(query, model=ENCODER, name="tokenize_query")
    vec = agentc.embed(ids, model=ENCODER, name="embed_query")
    hits = agentc.vector_search(vec, knowledge, k=3, name="retrieve")
    context = agentc.passages(hits, knowledge, name="context")
    prompt = agentc.format("Use the context to answer the question in one or two sentences.\n"
                           "Context:\n{ctx}\n\nQuestion: {q}", ctx=context, q=query, name="prompt")
    answer = agentc.llm(prompt, model=LLM, max_tokens=32, name="answer", prompt_len=192, cache_len=256)
    return context, answer

"""Retrieval with a rewritten query, as many production assistants do it: SmolLM2-135M first
says what the user's message asks about (a short search query), all-MiniLM-L6-v2 embeds that query,
vector search picks three passages of knowledge.txt, and SmolLM2 answers from them: two
LLM calls, one encoder, one search per request.

    python examples/query_rewrite_rag.py "so like where does the rhine actually go?"

AGENTC_RANDOM_WEIGHTS=1 swaps in the same architectures with seeded random weights.
"""

import os
import sys

import agentc

SUFFIX = "-random" if os.environ.get("AGENTC_RANDOM_WEIGHTS") == "1" else ""
ENCODER, LLM = "minilm-l6" + SUFFIX, "smollm2-135m" + SUFFIX

knowledge = agentc.VectorIndex("knowledge", "knowledge.txt", encoder=ENCODER)


@agentc.agent(sla_ms=15000)
def rewrite_rag(message):
    query = agentc.llm(agentc.format("What is this message asking about? Answer in a few words.\nMessage: {m}",
                                     m=message, name="rewrite_prompt"),
                       model=LLM, max_tokens=16, name="rewrite", prompt_len=64, cache_len=128)
    vec = agentc.embed(agentc.tokenize(query, model=ENCODER, name="tokenize_query"), model=ENCODER, name="embed_query")
    context = agentc.passages(agentc.vector_search(vec, knowledge, k=3, name="retrieve"), knowledge, name="context")
    prompt = agentc.format("Use the context to answer the question in one or two sentences.\nContext:\n{ctx}\n\n"
                           "Question: {q}", ctx=context, q=message, name="prompt")
    return agentc.llm(prompt, model=LLM, max_tokens=32, name="answer", prompt_len=192, cache_len=256)


if __name__ == "__main__":
    placement = agentc.compile(__file__, "build/query_rewrite_rag", devices=["cpu"], quiet=True)
    with agentc.load(placement.build_dir) as session:
        for m in sys.argv[1:] or ["so like where does the rhine actually go?"]:
            print(session.run({"message": m})["outputs"][0])

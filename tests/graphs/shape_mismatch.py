import agentc

corpus = agentc.VectorIndex("facts", "../../examples/corpus.txt")


@agentc.agent
def bad(q):
    ids = agentc.tokenize(q)
    return agentc.passages(agentc.vector_search(ids, corpus, k=2), corpus)

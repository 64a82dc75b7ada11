import agentc


@agentc.agent
def bad(q):
    return agentc.frobnicate(q)

import agentc

@agentc.agent
def broken(q)
    return q

import agentc


def f(x):
    return x


@agentc.agent
def cyc(q):
    a = agentc.tool(f, q, name="first", after=["second"])
    b = agentc.tool(f, a, name="second")
    return b

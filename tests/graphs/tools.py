import time

import agentc


def explode(q):
    raise ValueError("kaboom")


def slow(q):
    time.sleep(2.0)
    return q


def echo(q):
    return "echo:" + q


@agentc.agent(sla_ms=1000)
def tools(q):
    boom = agentc.contains(q, "boom")
    sleepy = agentc.contains(q, "sleep")
    a = agentc.cond(boom, lambda: agentc.tool(explode, q, name="explode"), lambda: "fine")
    b = agentc.cond(sleepy, lambda: agentc.tool(slow, q, timeout_ms=200, name="slow"), lambda: "awake")
    return agentc.format("{0} {1} {2}", a, b, agentc.tool(echo, q, name="echo"))

"""The staged ingress's queue per stage (agentc/serving/stage_gate.py): calls go in arrival
order, as many at once as there are replicas serving, and more as replicas come up."""

import asyncio

from agentc.serving.stage_gate import StageGate


def test_calls_go_in_order_one_per_replica_and_more_when_replicas_come_up():
    async def scenario():
        loop = asyncio.get_running_loop()
        replicas = {"n": 1}
        gate = StageGate(lambda: replicas["n"], loop)
        order, release = [], {i: asyncio.Event() for i in range(4)}

        async def call(i):
            async with gate:
                order.append(i)
                await release[i].wait()

        tasks = []
        for i in range(4):
            tasks.append(asyncio.create_task(call(i)))
            await asyncio.sleep(0)
        await asyncio.sleep(0)
        assert order == [0] and gate.running == 1 and len(gate.waiting) == 3
        replicas["n"] = 3  # two more replicas serving
        gate.poke()
        await asyncio.sleep(0.01)
        assert order == [0, 1, 2]
        release[1].set()
        await asyncio.sleep(0.01)
        assert order == [0, 1, 2, 3]  # the freed slot goes to the next in line
        for e in release.values():
            e.set()
        await asyncio.gather(*tasks)
        assert gate.running == 0 and not gate.waiting

    asyncio.run(scenario())

"""A queue per stage at the staged service's ingress: calls go to the stage's replicas in
arrival order, only as many at once as there are replicas serving, the rest waiting here for
the first one to free up.

Why: a call that finds every replica of a deployment full waits in Serve's router, which
retries after a backoff and keeps no order (experiments/serving/stage_slots.py); one that
finds a replica with a free slot waits there, behind the call it runs, while another replica
may free up first. The simulator's stage queue, which this is, held the RAG agent's SLO where
both of those did not.

Runs on the staged session's event loop; `poke` (from any thread) wakes waiters after the
replica count grows.
"""

from __future__ import annotations

import asyncio
import collections


class StageGate:
    def __init__(self, capacity, loop: asyncio.AbstractEventLoop):
        self.capacity = capacity  # () -> calls allowed at once (the replicas serving, at least 1)
        self.loop = loop
        self.running = 0
        self.waiting: collections.deque[asyncio.Future] = collections.deque()

    async def __aenter__(self):
        if self.waiting or self.running >= self.capacity():
            fut = self.loop.create_future()
            self.waiting.append(fut)
            await fut  # the slot was taken for it by _wake
        else:
            self.running += 1

    async def __aexit__(self, *exc):
        self.running -= 1
        self._wake()

    def _wake(self) -> None:
        while self.waiting and self.running < self.capacity():
            fut = self.waiting.popleft()
            if not fut.done():
                self.running += 1
                fut.set_result(None)

    def poke(self) -> None:
        self.loop.call_soon_threadsafe(self._wake)

"""Decode steps per device call (agentc.models.decode_loop), chosen from the cost model.

A call per step pays, per token, the device's host round trip (`DeviceSpec.sync_s`: two
calls, the token read back, the end-of-turn check, the runtime's scheduling); a chunk of N
pays it once per N tokens. Against that, a chunk that samples end-of-turn early runs the
rest of its steps for nothing, and a streamed answer reaches the client a chunk at a time.
So the chunk is the shortest that brings the round trip below `SHARE` of a step, no
longer than `GAP_S` of decoding, and no longer than the generation.
"""

from __future__ import annotations

import math

SHARE = 0.05  # what the round trip may add to a step's time
GAP_S = 0.25  # a streamed answer's tokens arrive at least this often


def choose(step_s: float, sync_s: float, steps: int, share: float = SHARE, gap_s: float = GAP_S) -> int:
    """Tokens per decode call for a step of `step_s` seconds whose round trip costs
    `sync_s`, in a generation of `steps` decode steps."""
    if steps <= 1 or sync_s <= 0 or step_s <= 0:
        return 1
    wanted = math.ceil(sync_s / (share * step_s))
    return max(1, min(wanted, int(gap_s // step_s), steps))


def chooser(cluster):
    """`choose(steps, impls) -> N` for decompose-agent-ops: the step's predicted time on the
    cluster's fastest device for it, in the form that device runs (`impls`: runtime -> the
    step's func op, None -> the default), and that device's round trip."""
    from agentc.cost.catalog import device_profile
    from agentc.cost.roofline import func_work, kernel_time

    def choose_for(steps: int, impls: dict) -> int:
        works = {}  # by form, each walked once and only where a device runs it

        def step_s(d) -> float:
            form = d.runtime if d.runtime in impls else None
            if form not in works:
                works[form] = func_work(impls[form])
            return kernel_time(works[form], d.spec, device_profile(d.spec))

        fastest, sync_s = min((step_s(d), d.spec.sync_s) for d in cluster.devices.values())
        return choose(fastest, sync_s, steps)

    return choose_for

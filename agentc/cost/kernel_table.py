"""What `agentc calibrate` needs of each call's kernel, computed where the IR is at hand (the
compiler, when it writes a build) so that calibrating needs no compiler where it runs."""

from __future__ import annotations

from agentc.cost import measured


def kernel_table(funcs: dict, calls, specs: dict) -> dict[str, dict]:
    """Per call "callee|device": the digest of the implementation that device runs, its op
    class, and the roofline's seconds on the device's spec (None without one). A build keeps
    it in plan.json, so `agentc calibrate` needs no compiler where it runs (a GPU machine
    with the IREE runtime alone)."""
    from agentc.cost.catalog import device_profile
    from agentc.cost.roofline import func_work, kernel_time
    from agentc.models.kernels import impl_for

    out = {}
    for c, d, runtime in sorted(calls):
        impl = impl_for(funcs, c, runtime)
        work = func_work(impl)
        spec = specs.get(d)
        roofline = kernel_time(work, spec, device_profile(spec)) if spec is not None else None
        out[f"{c}|{d}"] = {"digest": measured.impl_digest(impl), "op_class": work.op_class, "roofline_s": roofline}
    return out

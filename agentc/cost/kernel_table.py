"""What `agentc calibrate` needs of each call's kernel, computed where the IR is at hand (the
compiler, when it writes a build) so that calibrating needs no compiler where it runs."""

from __future__ import annotations

from agentc.cost import measured


def kernel_table(funcs: dict, calls, specs: dict, works: dict | None = None,
                 digests: dict | None = None) -> dict[str, dict]:
    """Per call "callee|device": the digest of the implementation that device runs, its op
    class, and the roofline's seconds on the device's spec (None without one). A build keeps
    it in plan.json, so `agentc calibrate` needs no compiler where it runs (a GPU machine
    with the IREE runtime alone). `works` and `digests` (by implementation symbol) are the
    costing stage's (Lowered.works, Lowered.digests): what it computed is not computed again."""
    from torch_mlir import ir

    from agentc.cost.catalog import device_profile
    from agentc.cost.roofline import func_work, kernel_time
    from agentc.models.kernels import impl_for

    works = {} if works is None else works
    digests = {} if digests is None else digests
    out = {}
    for c, d, runtime in sorted(calls):
        impl = impl_for(funcs, c, runtime)
        sym = ir.StringAttr(impl.attributes["sym_name"]).value
        if sym not in works:
            works[sym] = func_work(impl)
        if sym not in digests:
            digests[sym] = measured.impl_digest(impl)
        spec = specs.get(d)
        roofline = kernel_time(works[sym], spec, device_profile(spec)) if spec is not None else None
        out[f"{c}|{d}"] = {"digest": digests[sym], "op_class": works[sym].op_class, "roofline_s": roofline}
    return out

"""The costing stage: every kernel's run time on every listed device (the roofline over its
linalg ops, calibrated by the device's profile), the weights it keeps resident, and the
admission check that some device can run each operator at all."""

from __future__ import annotations

from torch_mlir import ir

from agentc.cost import measured
from agentc.cost.catalog import device_profile
from agentc.cost.roofline import func_work, kernel_time, runs_on
from agentc.frontend.graph import AgentError
from agentc.ir.lower import Lowered
from agentc.models.kernels import impl_for
from agentc.placement.cluster import Cluster
from agentc.placement.useful_devices import useful_counts


def estimate(low: Lowered, cluster: Cluster, slowdown: dict[str, float] | None = None):
    """Run time of every kernel on every cluster device that computes it right (none where
    a loop over one row passes the device's `max_loop_iterations`), and the weights it keeps
    resident. A kernel measured on the device's kind (agentc calibrate) takes its
    measurement (agentc.cost.measured)."""
    call_times, weights, row_loops = {}, {}, {}
    slow = dict(slowdown or {})
    for callee in {op.callee for op in low.ops if op.kind == "call"}:
        # The implementation's signature is the interface: the wrapper only loads weights.
        # A device runs its runtime's variant of the kernel where there is one.
        works, times = {}, {}
        call_times[callee] = times
        for d in cluster.devices.values():
            impl = impl_for(low.funcs, callee, d.runtime)
            sym = ir.StringAttr(impl.attributes["sym_name"]).value
            if sym not in low.works:
                low.works[sym] = func_work(impl)
            work = works[sym] = low.works[sym]
            if sym not in low.digests:
                low.digests[sym] = measured.impl_digest(impl)
            if runs_on(work, d.spec):
                # Measured on this kind of device (agentc calibrate), else the roofline.
                who = d.spec.measured_as or d.spec.name
                seconds = measured.kernel_seconds(low.digests[sym], who)
                if seconds is None:
                    factor = measured.class_factor(work.op_class, who) or 1.0
                    seconds = kernel_time(work, d.spec, device_profile(d.spec)) * factor
                times[d.name] = seconds * slow.get(d.name, 1.0)
        row_loops[callee] = max(w.row_loop for w in works.values())
        group = ir.StringAttr(low.funcs[callee].attributes["agent.weights"]).value
        nbytes = sum(a.nbytes for a in low.weights.get(group, {}).values())
        weights[callee] = {group: nbytes} if nbytes else {}
    _admission_check(low.ops, cluster, weights, call_times, row_loops)
    return call_times, weights


def listed_cluster(low: Lowered, cluster: Cluster, slowdown=None, arrival_rate=None) -> Cluster:
    """The cluster as placement sees it: of each class of interchangeable devices, as many
    as a request can use (agentc/placement/useful_devices.py)."""
    reps = cluster.trimmed(lambda groups: 1)
    call_times, weights = estimate(low, reps, slowdown)
    return cluster.trimmed(useful_counts(low.ops, reps, call_times, weights, arrival_rate))


def _admission_check(ops, cluster: Cluster, weights, call_times, row_loops) -> None:
    """An operator that no device of the cluster can both compute right and hold the
    weights of is an error naming it and why (placement admits devices the same way)."""
    for op in ops:
        if op.kind != "call":
            continue
        need = sum(weights.get(op.callee, {}).values())
        right = [cluster.devices[n] for n in call_times[op.callee]]
        if any(d.spec.memory_bytes >= need for d in right):
            continue
        if not right:
            limits = ", ".join(f"{d.name}: {d.spec.max_loop_iterations:.0f}"
                               for d in cluster.devices.values())
            why = (f"it loops over a row of {row_loops[op.callee]:.0f} in one dispatch, longer "
                   f"than every device's max_loop_iterations ({limits}); add a device without "
                   f"that limit, e.g. cpu")
        else:
            why = f"needs {need / 1e6:.1f} MB of weights"
            if len(right) < len(cluster.devices):
                why += f", and only {', '.join(d.name for d in right)} compute it right"
        raise AgentError(f"{op.loc}: node '{op.name}': no listed device can run it ({why}; "
                         f"devices: {cluster.describe()})")

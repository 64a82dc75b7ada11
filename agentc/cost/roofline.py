"""Roofline cost of a compute kernel from its IR: FLOPs and bytes from the linalg ops'
shapes, time = max(FLOPs / (peak * efficiency), bytes / (bandwidth * efficiency)) plus
overheads.

Bytes count the kernel's arguments and results (weights included): after fusion the
intermediates stay in cache or registers, and the interface traffic is what a device must
actually move.

Efficiencies differ by kind of kernel (a GEMM reaches a far larger share of peak than a
softmax), so each kernel also gets an op class derived from its linalg ops. A calibration
profile (`agentc bench`, agentc/cost/profile.py) holds measured efficiencies and overheads
per class; without one the catalog's defaults apply, and `kernel_estimate` says which.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

from torch_mlir import ir

from agentc.cost.catalog import DeviceSpec
from agentc.cpu_kernels import gemv
from agentc.ir.plan import type_bytes

if TYPE_CHECKING:
    from agentc.cost.profile import Profile

# Named contractions: FLOPs = 2 * |output| * K, K the last dimension of the first operand.
CONTRACTIONS = {"linalg.matmul", "linalg.batch_matmul", "linalg.matvec", "linalg.vecmat",
                "linalg.batch_matvec", "linalg.dot"}
# Ops that move or initialise data without arithmetic.
DATA_MOVEMENT = {"linalg.fill", "linalg.transpose", "linalg.copy", "linalg.broadcast"}
# Body ops that are not arithmetic: casts, index computations, constants.
_FREE_BODY_OPS = ("arith.ext", "arith.trunc", "arith.sitofp", "arith.uitofp", "arith.fptosi",
                  "arith.fptoui", "arith.bitcast", "arith.index_cast", "arith.constant",
                  "linalg.index", "linalg.yield")
# Elementwise math that marks a normalisation (softmax, layernorm) or attention.
_NORMALIZING = ("math.exp", "math.rsqrt", "math.sqrt", "arith.divf")

# IREE forms one dispatch around each contraction or reduction and fuses the elementwise
# ops into them (measured: tiny-encoder's 122 linalg ops, 35 of them roots, make 34
# dispatches), so roots estimate a kernel's dispatches.
VECTOR_KINDS = ("matvec", "vecmat", "vecmat_t")
CONTRACTION_KINDS = ("contraction", *VECTOR_KINDS)
DISPATCH_ROOTS = (*CONTRACTION_KINDS, "reduction", "serial_sum", "argreduce")

MATMUL_CLASSES = ("matmul", *VECTOR_KINDS)

OP_CLASSES = ("matmul", "matvec", "vecmat", "vecmat_t", "attention", "softmax", "layernorm",
              "serial_softmax", "serial_layernorm", "reduction", "serial_sum", "topk",
              "elementwise")


@dataclass(frozen=True)
class Work:
    flops: float
    bytes: float
    dispatches: int  # estimated IREE dispatches: contractions and reductions, at least 1
    op_class: str = "elementwise"  # one of OP_CLASSES
    dtype: str = "f32"  # element type of the kernel's first floating-point argument
    # Independent iterations of its main loop nest (output elements): recorded in profiles,
    # used to class one-row sums and, on a device priced in waves, to infer its workgroups.
    parallel: float = 1.0
    # The longest loop over a single row in one dispatch: a GPU compiler gives a one-row
    # reduction one workgroup, IREE's baseline SPIR-V one invocation looping over the row,
    # which a device with a loop limit (lavapipe's 65,535) cuts short (`runs_on`).
    row_loop: float = 0.0
    # A GEMM-like kernel's output columns (its largest contraction's; 0 for other classes):
    # IREE tiles them, and a count off the tile takes slower code (profile.ShapeRules).
    columns: int = 0


@dataclass(frozen=True)
class Estimate:
    seconds: float
    source: str  # "defaults" or "profile:<file>"
    calibration: str = ""  # which of the profile's calibrations applied, e.g. "matmul.f16"


@dataclass(frozen=True)
class _OpInfo:
    kind: str  # contraction, matvec, vecmat, vecmat_t, reduction, serial_sum, argreduce,
    #            elementwise, data
    flops: float
    normalizing: bool
    exponential: bool = False  # a softmax's exp, as opposed to a layernorm's rsqrt
    parallel: float = 1.0  # product of the op's parallel loop ranges
    row_loop: float = 0.0  # its reduction's length, where it reduces a single row
    columns: int = 0  # a contraction's output columns (its result's last dimension)


def _shape(t: ir.Type) -> list[int]:
    if isinstance(t, ir.RankedTensorType):
        return list(t.shape)
    return []


def _body_ops(op: ir.Operation) -> list[str]:
    if not op.regions or not op.regions[0].blocks:
        return []
    return [o.operation.name for o in op.regions[0].blocks[0].operations]


def _arith_count(body: list[str]) -> int:
    return sum(1 for name in body if not name.startswith(_FREE_BODY_OPS))


def _loop_dims(op: ir.Operation) -> tuple[list[int], list[list[int]]] | None:
    """Loop ranges and each operand's loop dimensions, from a structured op's indexing maps."""
    if "indexing_maps" not in op.attributes:
        return None
    maps = [ir.AffineMapAttr(a).value for a in op.attributes["indexing_maps"]]
    operands = list(op.operands)
    if len(maps) != len(operands):
        return None
    ranges = [1] * maps[0].n_dims
    dims_of = []
    for m, v in zip(maps, operands):
        shape = _shape(v.type)
        dims = []
        for i, e in enumerate(m.results):
            if isinstance(e, ir.AffineDimExpr):
                dims.append(e.position)
                if i < len(shape):
                    ranges[e.position] = max(ranges[e.position], shape[i])
        dims_of.append(dims)
    return ranges, dims_of


def _transposed(v: ir.Value) -> bool:
    """Whether `v` is a 2-D linalg.transpose of something: its memory layout is the
    source's, so a reduction over its rows runs along contiguous memory."""
    owner = v.owner
    if isinstance(owner, ir.Block):  # a function or region argument
        return False
    return getattr(owner, "operation", owner).name == "linalg.transpose" and len(_shape(v.type)) == 2


def _columns_of(op: ir.Operation) -> int:
    """The last dimension of an op's first result: a contraction's output columns."""
    out = _shape(op.results[0].type) if op.results else []
    return out[-1] if out else 1


def _vector_kind(reduces_inner: bool) -> str:
    """A matrix-vector product reducing along the matrix's contiguous dimension (y = W x,
    W row-major) streams memory; reducing along rows (y = x W) strides through it."""
    return "matvec" if reduces_inner else "vecmat"


def _named_contraction(op: ir.Operation) -> _OpInfo:
    name = op.name
    lhs = _shape(op.operands[0].type)
    out = _shape(op.results[0].type)
    parallel = float(math.prod(out or [1]))
    flops = 2.0 * parallel * (lhs[-1] if lhs else 1)

    def info(kind: str) -> _OpInfo:
        return _OpInfo(kind, flops, False, parallel=parallel, columns=_columns_of(op))

    if name in ("linalg.matvec", "linalg.batch_matvec", "linalg.dot"):
        return info("matvec")
    if name == "linalg.vecmat":
        return info(_vector_kind(_transposed(op.operands[1])))
    m, n = (out[-2], out[-1]) if len(out) >= 2 else (1, 1)
    if n == 1:  # A[m,k] @ B[k,1]: A is reduced along its rows
        return info(_vector_kind(not _transposed(op.operands[0])))
    if m == 1:  # x[1,k] @ B[k,n]; x @ W^T streams W's rows, but IREE compiles it as a matmul
        return info("vecmat_t" if _transposed(op.operands[1]) else "vecmat")
    return info("contraction")


def _kernel_call(op: ir.Operation):
    """The CPU kernel a `func.call` calls (agentc.cpu_kernels.gemv), or None."""
    if op.name != "func.call":
        return None
    return gemv.parse(ir.FlatSymbolRefAttr(op.attributes["callee"]).value)


def _analyse(op: ir.Operation) -> _OpInfo:
    name = op.name
    if (g := _kernel_call(op)) is not None:  # a matrix-vector product over quantized blocks
        return _OpInfo("matvec", g.flops(), False, parallel=float(g.n), columns=1)
    body = _body_ops(op)
    exponential = "math.exp" in body or name in ("linalg.exp", "linalg.softmax")
    normalizing = exponential or any(b.startswith(_NORMALIZING) for b in body) or name.startswith(
        ("linalg.rsqrt", "linalg.sqrt", "linalg.div"))
    if name in DATA_MOVEMENT:
        return _OpInfo("data", 0.0, False)
    if name in CONTRACTIONS:
        return _named_contraction(op)
    loops = _loop_dims(op)
    if loops is not None:
        ranges, dims_of = loops
        iterators = [str(a) for a in op.attributes["iterator_types"]]
        reduction = {d for d, it in enumerate(iterators) if "reduction" in it}
        n_inputs = len(op.operands) - len(op.results)
        flops = float(math.prod(ranges)) * _arith_count(body)
        parallel = float(math.prod(r for d, r in enumerate(ranges) if d not in reduction))
        inputs = dims_of[:n_inputs]
        shared = any(sum(d in dims for dims in inputs) >= 2 for d in reduction)
        if reduction and shared and any(b.startswith(("arith.mul", "arith.fma")) for b in body):
            # A contraction: its M (N) dims are the parallel dims of only the first (second)
            # input; with M or N of 1 it is a matrix-vector product over the larger input.
            free = set(range(len(ranges))) - reduction
            only = [set(dims) & free - set().union(*(set(o) for o in inputs if o is not dims))
                    for dims in inputs]
            sizes = [math.prod(ranges[d] for d in s) for s in only[:2]]
            columns = _columns_of(op)
            if len(sizes) == 2 and min(sizes) > 1:
                return _OpInfo("contraction", flops, False, parallel=parallel, columns=columns)
            big = max(inputs, key=lambda dims: math.prod(ranges[d] for d in dims))
            kind = _vector_kind(bool(big) and big[-1] in reduction)
            # A first operand with a unit row of its own is x[1,k] @ W^T written as a matmul.
            if kind == "matvec" and len(sizes) == 2 and only[0] and sizes[0] == 1 and only[1]:
                kind = "vecmat_t"
            return _OpInfo(kind, flops, False, parallel=parallel, columns=columns)
        if reduction:
            row = float(math.prod(ranges[d] for d in reduction)) if parallel == 1 else 0.0
            # torch-mlir lowers amax/amin as max-with-index; an unused index is dead code.
            index_used = any(True for r in list(op.results)[1:] for _ in r.uses)
            if index_used:
                return _OpInfo("argreduce", flops, normalizing, exponential, parallel, row)
            # One row summed: without reassociating floating-point addition there is no
            # parallelism to use, on a CPU's vector lanes or a GPU's workgroups.
            serial = parallel == 1 and "arith.addf" in body
            return _OpInfo("serial_sum" if serial else "reduction", flops, normalizing,
                           exponential, parallel, row)
        return _OpInfo("elementwise", flops, normalizing, exponential, parallel)
    domain = max((float(math.prod(_shape(v.type))) for v in list(op.operands) + list(op.results)
                  if _shape(v.type)), default=0.0)
    kind = "reduction" if name == "linalg.reduce" else "elementwise"
    results = [float(math.prod(_shape(r.type))) for r in op.results if _shape(r.type)]
    return _OpInfo(kind, domain * max(_arith_count(body), 1), normalizing, exponential,
                   max(results, default=domain))


def _op_class(infos: list[_OpInfo]) -> str:
    """The class whose measured efficiency should price the whole kernel."""
    kinds = [i.kind for i in infos]
    normalizing = any(i.normalizing for i in infos)
    contractions = [i for i in infos if i.kind in CONTRACTION_KINDS]
    if len(contractions) == 2 and normalizing and "reduction" in kinds:
        return "attention"
    if contractions:
        flops = {kind: sum(i.flops for i in contractions if i.kind == kind)
                 for kind in CONTRACTION_KINDS}
        top = max(flops, key=flops.get)
        return "matmul" if top == "contraction" else top
    reducing = bool({"reduction", "serial_sum", "argreduce"} & set(kinds))
    if reducing and normalizing:
        # IREE gives softmax (a row max, an exp-sum, a divide) one fused dispatch and a
        # layernorm two (mean, then variance and scale): they run at different rates. Over
        # one row (sampling over a vocabulary, a decode step's norm) their sums are serial
        # (see serial_sum) and one workgroup does all of it: 2-3x slower per byte.
        kind = "softmax" if any(i.exponential for i in infos) else "layernorm"
        return f"serial_{kind}" if "serial_sum" in kinds else kind
    if kinds.count("argreduce") >= 2:  # rounds of argmax and masking; one is a reduction
        return "topk"
    if "serial_sum" in kinds and not {"reduction", "argreduce"} & set(kinds):
        return "serial_sum"
    return "reduction" if reducing else "elementwise"


def _walk_linalg(op: ir.Operation, trips: int = 1):
    """(linalg op, how many times it runs per call): ops inside an `scf.for` with constant
    bounds (a decode chunk, agentc.models.decode_loop) run once per trip."""
    for region in op.regions:
        for block in region.blocks:
            for inner in block.operations:
                o = inner.operation
                if (o.name.startswith("linalg.") and o.name != "linalg.yield") or _kernel_call(o) is not None:
                    yield o, trips
                else:
                    yield from _walk_linalg(o, trips * (_trip_count(o) if o.name == "scf.for" else 1))


def _trip_count(loop: ir.Operation) -> int:
    """An scf.for's trip count from its constant bounds (1 where they are not constants)."""
    bounds = []
    for v in list(loop.operands)[:3]:
        owner = getattr(v.owner, "operation", v.owner)  # a block (an argument) has no name
        if getattr(owner, "name", None) != "arith.constant":
            return 1
        bounds.append(ir.IntegerAttr(owner.attributes["value"]).value)
    lo, hi, step = bounds
    return max(0, -(-(hi - lo) // step))


def _first_float_dtype(types) -> str:
    for t in types:
        if isinstance(t, ir.RankedTensorType) and isinstance(t.element_type, ir.FloatType):
            return str(t.element_type)
    return "f32"


def func_work(impl: ir.Operation) -> Work:
    """FLOPs, interface bytes, dispatch count, op class and dtype of one `func.func`."""
    walked = list(_walk_linalg(impl.operation))
    infos = [_analyse(o) for o, _ in walked]
    trips = [n for _, n in walked]
    ftype = ir.FunctionType(ir.TypeAttr(impl.attributes["function_type"]).value)
    # Arguments it never reads are not moved (a quantized step's unused float32 weights).
    used = [a.type for a in impl.regions[0].blocks[0].arguments if any(True for _ in a.uses)] \
        if len(impl.regions[0].blocks) else list(ftype.inputs)
    types = used + list(ftype.results)
    # A loop's every trip reads what the function takes (a decode chunk's weights and caches).
    nbytes = sum(type_bytes(t) for t in types) * max(trips, default=1)
    roots = [i for i in infos if i.kind in DISPATCH_ROOTS]
    n_roots = sum(n for i, n in zip(infos, trips) if i.kind in DISPATCH_ROOTS)
    main = max(roots or [i for i in infos if i.kind != "data"] or [_OpInfo("data", 0.0, False)],
               key=lambda i: (i.flops, i.parallel))
    op_class = _op_class(infos)
    rows = [i.row_loop for i in infos if i.row_loop]
    # A softmax's or layernorm's reductions share one dispatch (one shader, one loop budget)
    # with the pass that scales the row (on lavapipe 1 x 30,000 is wrong: 3 x 30,000 > 65,535);
    # other kernels' reductions are dispatches of their own.
    fused = op_class.removeprefix("serial_") in ("softmax", "layernorm") and rows
    row_loop = sum(rows) + max(rows) if fused else max(rows, default=0.0)
    return Work(sum(i.flops * n for i, n in zip(infos, trips)), float(nbytes), max(n_roots, 1), op_class,
                _first_float_dtype(ftype.inputs), main.parallel, row_loop,
                _columns(op_class, infos))


def _columns(op_class: str, infos: list[_OpInfo]) -> int:
    """A GEMM-like kernel's output columns, those of its largest contraction (what IREE
    tiles); 0 for other classes, which are not judged by them."""
    contractions = [i for i in infos if i.kind in CONTRACTION_KINDS]
    if op_class not in MATMUL_CLASSES or not contractions:
        return 0
    return max(contractions, key=lambda i: i.flops).columns


def runs_on(work: Work, spec: DeviceSpec) -> bool:
    """Whether the device computes the kernel right: false where its reductions over one row
    loop longer than the device's `max_loop_iterations` (lavapipe's shaders stop after
    65,535 in all, and the result is silently wrong: experiments/cost-model/vulkan_results_check.py)."""
    return spec.max_loop_iterations is None or work.row_loop <= spec.max_loop_iterations


# Beyond this many bytes a call's data cannot be in any cache of the devices priced here
# when the call starts (the largest last-level caches are tens of MB): a decode step's
# weights, read once per step, come from DRAM.
STREAM_BYTES = 64 * 2**20


def kernel_estimate(work: Work, spec: DeviceSpec, profile: Profile | None = None) -> Estimate:
    """Predicted seconds for one call, and where the rates came from. A call that streams
    more than STREAM_BYTES moves its bytes at no more than the device's DRAM rate: the
    microbenchmarks behind a profile rerun one kernel on the same buffers, so their small
    kernels stream from cache, and a fit over them can price a many-dispatch kernel (a
    decode step: ~400 dispatches of one layer's weights each) as if its 560 MB did too."""
    floor = work.bytes / spec.dram if work.bytes > STREAM_BYTES else 0.0
    if profile is not None:
        seconds, key = profile.predict(work.flops, work.bytes, work.op_class, work.dtype,
                                       work.dispatches, spec.peak_flops, spec.memory_bandwidth,
                                       parallel=work.parallel, columns=work.columns, floor_s=floor)
        return Estimate(seconds, f"profile:{profile.path.name}", key)
    compute = work.flops / (spec.peak_flops * spec.compute_efficiency)
    memory = work.bytes / (spec.memory_bandwidth * spec.memory_efficiency)
    overhead = spec.call_overhead_s + work.dispatches * spec.dispatch_overhead_s * 0.5
    return Estimate(max(compute, memory, floor) + overhead, "defaults")


def kernel_time(work: Work, spec: DeviceSpec, profile: Profile | None = None) -> float:
    return kernel_estimate(work, spec, profile).seconds

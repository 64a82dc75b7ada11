"""How many workgroups IREE launches for each dispatch of a kernel, from its own codegen.

A GPU runs a dispatch's workgroups in waves of (about) one per compute unit, so a dispatch
of 24 workgroups on a 132-SM H200 takes as long as one of 132: IREE's f32 matmuls, tiled
32x128 per workgroup, follow their per-workgroup depth (K) and not their FLOPs until they
fill the GPU (measured: 128x768x768 and 128x768x3072 both take ~390 us, 128x3072x768 takes
1173 us on an H200). The roofline can only price that with the grid IREE actually chose, so the
bench records it: the module is compiled to `executable-targets`, where each export's
workgroup count is resolved to constants for static shapes.

The same listing gives each dispatch's invocations per workgroup (`workgroup_sizes`). The
grid and the sizes are cached by content hash, like compiled modules; the listing is not.
"""

from __future__ import annotations

import json
import math
import re

from agentc import store
from agentc.build.iree_compile import IreeCompileError, cache_key, first_error

_EXPORT = re.compile(
    r"hal\.executable\.export public @(\S+) .*?count\(.*?\{(.*?)hal\.return (%\S+), (%\S+), (%\S+) :",
    re.DOTALL)
_CONSTANT = re.compile(r"(%\S+) = arith\.constant (\d+) : index")
_WORKGROUP_SIZE = re.compile(r"workgroup_size = \[(\d+) : index, (\d+) : index, (\d+) : index\]")
# IREE names a dispatch <function>_dispatch_<n>_<root kind>_<iteration shape>_<types>.
_ROOT_SHAPE = re.compile(r"_dispatch_\d+_[a-z_]*?_?(\d+(?:x\d+)*)(?:_|x[a-z]|$)")


class GridError(IreeCompileError):
    pass


def _iteration_size(dispatch: str) -> int:
    """The size of a dispatch's iteration space, from the shape in its name (1 if none)."""
    m = _ROOT_SHAPE.search(dispatch)
    return math.prod(int(x) for x in m.group(1).split("x")) if m else 1


def parse_grid(text: str) -> list[list[int]]:
    """[iteration size, workgroups] per dispatch of an `executable-targets` listing. A count
    that is not a constant (dynamic shapes) is recorded as 0: unknown."""
    grid = []
    for m in _EXPORT.finditer(text):
        constants = dict(_CONSTANT.findall(m.group(2)))
        counts = [int(constants[v]) if v in constants else 0 for v in m.group(3, 4, 5)]
        grid.append([_iteration_size(m.group(1)), math.prod(counts)])
    return grid


def parse_workgroup_sizes(text: str) -> list[int]:
    """Invocations per workgroup of each dispatch of an `executable-targets` listing: on
    Vulkan a reduction over one row gets a single invocation looping over the row."""
    return [int(x) * int(y) * int(z) for x, y, z in _WORKGROUP_SIZE.findall(text)]


def _listing(text: str, target: str, flags: tuple[str, ...], phase: str) -> str:
    """`text` compiled for IREE `target` up to `phase` (an `--compile-to` value), as text."""
    import iree.compiler as ic

    try:
        listing = ic.compile_str(text, target_backends=[target],
                                 extra_args=[*flags, f"--compile-to={phase}"])
    except ic.CompilerToolError as e:
        raise GridError(f"iree-compile ({phase}, {target}) failed: {first_error(e)}") from None
    return listing.decode() if isinstance(listing, bytes) else listing


def configuration(text: str, target: str, flags: tuple[str, ...] = ()) -> str:
    """iree-compile's configuration of each dispatch of `text` for IREE `target`: the tiles
    and pipeline its strategy selection chose, before any code is generated (on llvm-cpu
    `distribution` and `vector_common_parallel` tiles; on SPIR-V the `spirv_pipeline`)."""
    return _listing(text, target, flags, "executable-configurations")


def _codegen(text: str, target: str, flags: tuple[str, ...]) -> dict:
    """The grid and workgroup sizes of `text` compiled for IREE `target` up to
    `executable-targets`, cached by content (the listing itself, up to ~1 MB for cuda, is not
    kept)."""
    def make() -> bytes:
        listing = _listing(text, target, flags, "executable-targets")
        return json.dumps({"grid": parse_grid(listing), "workgroup_sizes": parse_workgroup_sizes(listing)}).encode()

    return json.loads(store.cached_bytes("codegen", cache_key(text, target, flags), make, ".json"))


def dispatch_grid(text: str, target: str, flags: tuple[str, ...]) -> list[list[int]]:
    """[iteration size, workgroups] per dispatch of `text` compiled for IREE `target`."""
    return _codegen(text, target, flags)["grid"]


def workgroup_sizes(text: str, target: str, flags: tuple[str, ...]) -> list[int]:
    """Invocations per workgroup of each dispatch of `text` compiled for IREE `target`."""
    return _codegen(text, target, flags)["workgroup_sizes"]

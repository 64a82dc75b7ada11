"""A group of linears reading one activation as one call of the kernel, named for its
shapes: `agentc_gemv_<form>_x<x shape>_<rows>[b]_<rows>[b]...` (`b`: that linear adds a
bias). Operator IR declares such a function and calls it (agentc.models.split_linears); a
cpu device module gets its definition here (outline-device-modules): a `flow.dispatch` of a
`stream.executable` that calls the object's function (agentc.cpu_kernels.objects) over
WORKGROUPS row ranges, between the reshapes, slices and bias additions that give each linear
its own result.

Declaration: (values (n*k/per_byte,) i8, scales (n*k/32,) f32, minima or Q8_0's offsets
(n*k/32,) f32, x (..., k) f32, a bias (rows,) per biased linear) -> per linear (..., rows) f32.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from agentc.cpu_kernels.blocks import FORMS

PREFIX = "agentc_gemv_"
WORKGROUPS = 4  # row ranges a dispatch is split into (experiments/cpu-ukernel: 2 to 16 alike on 2 cores)
TARGET = '#hal.executable.target<"llvm-cpu", "embedded-elf-x86_64">'
_NAME = re.compile(PREFIX + r"(q4_1|q8_0)_x([0-9x]+)_((?:\d+b?_)*\d+b?)")


@dataclass(frozen=True)
class Gemv:
    form: str
    x_shape: tuple[int, ...]
    rows: tuple[int, ...]
    biased: tuple[bool, ...]

    @property
    def k(self) -> int:
        return self.x_shape[-1]

    @property
    def n(self) -> int:
        return sum(self.rows)

    @property
    def name(self) -> str:
        parts = "_".join(f"{r}{'b' if b else ''}" for r, b in zip(self.rows, self.biased))
        return f"{PREFIX}{self.form}_x{'x'.join(map(str, self.x_shape))}_{parts}"

    def arg_types(self) -> list[str]:
        nq, ns = self.n * self.k // FORMS[self.form][1], self.n * self.k // 32
        return ([f"tensor<{nq}xi8>", f"tensor<{ns}xf32>", f"tensor<{ns}xf32>", _tensor(self.x_shape)]
                + [f"tensor<{r}xf32>" for r, b in zip(self.rows, self.biased) if b])

    def result_types(self) -> list[str]:
        return [_tensor((*self.x_shape[:-1], r)) for r in self.rows]

    def declaration(self) -> str:
        return f"func.func private @{self.name}({', '.join(self.arg_types())}) -> ({', '.join(self.result_types())})\n"

    def flops(self) -> float:
        return 2.0 * self.n * self.k


def _tensor(shape) -> str:
    return f"tensor<{'x'.join(map(str, shape))}xf32>"


def parse(name: str) -> Gemv | None:
    """The call a kernel symbol stands for (None: not a kernel call)."""
    m = _NAME.fullmatch(name)
    if m is None:
        return None
    parts = m[3].split("_")
    return Gemv(m[1], tuple(int(s) for s in m[2].split("x")), tuple(int(p.rstrip("b")) for p in parts),
                tuple(p.endswith("b") for p in parts))


def executable(ex: str, obj: Path, form: str, n: int, k: int, rows: int) -> str:
    """A `stream.executable` @ex whose export @ex runs the object's function for `form` over
    ceil(n / rows) workgroups of `rows` output rows, for an (n, k) matrix."""
    fn, per_byte = FORMS[form]
    nq, ns = n * k // per_byte, n * k // 32
    mem = f"memref<{nq}xi8>, memref<{ns}xf32>, memref<{ns}xf32>, memref<{k}xf32>, memref<{n}xf32>"
    return f"""  stream.executable private @{ex} attributes {{
    hal.executable.objects = #hal.executable.objects<{{{TARGET} = [#hal.executable.object<{{path = "{obj}"}}>]}}>
  }} {{
    stream.executable.export public @{ex} workgroups(%n: index) -> (index, index, index) {{
      %g = affine.apply affine_map<()[s0] -> (s0 ceildiv {rows})>()[%n]
      %c1 = arith.constant 1 : index
      stream.return %g, %c1, %c1 : index, index, index
    }}
    builtin.module {{
      func.func private @{fn}({mem}, index, index, index, index) attributes {{hal.import.static}}
      func.func @{ex}(%b0: !stream.binding, %b1: !stream.binding, %b2: !stream.binding, %b3: !stream.binding,
                      %b4: !stream.binding, %n: index) {{
        %c0 = arith.constant 0 : index
        %k = arith.constant {k} : index
        %rows = arith.constant {rows} : index
        %g = stream.dispatch.workgroup.id[0] : index
        %row0 = affine.apply affine_map<()[s0] -> (s0 * {rows})>()[%g]
        %q = stream.binding.subspan %b0[%c0] : !stream.binding -> memref<{nq}xi8>
        %d = stream.binding.subspan %b1[%c0] : !stream.binding -> memref<{ns}xf32>
        %m = stream.binding.subspan %b2[%c0] : !stream.binding -> memref<{ns}xf32>
        %x = stream.binding.subspan %b3[%c0] : !stream.binding -> memref<{k}xf32>
        %y = stream.binding.subspan %b4[%c0] : !stream.binding -> memref<{n}xf32>
        func.call @{fn}(%q, %d, %m, %x, %y, %n, %k, %row0, %rows) : ({mem}, index, index, index, index) -> ()
        return
      }}
    }}
  }}
"""


def definition(g: Gemv, obj: Path) -> str:
    """The function @<g.name> and its executable, as IREE input (parsed in IREE's context)."""
    n, k = g.n, g.k
    rows = -(-n // WORKGROUPS)
    ex = f"{g.name}__ex"
    args = g.arg_types()
    rank = len(g.x_shape)
    all_dims = f"[[{', '.join(map(str, range(rank)))}]]"
    body = []
    if rank > 1:
        body.append(f"    %flat = tensor.collapse_shape %x {all_dims} : {args[3]} into tensor<{k}xf32>")
    x = "%flat" if rank > 1 else "%x"
    body.append(f"    %n = arith.constant {n} : index")
    body.append(f"    %y = flow.dispatch @{ex}::@{ex}[%n](%q, %d, %m, {x}, %n) : ({', '.join(args[:3])}, "
                f"tensor<{k}xf32>, index) -> tensor<{n}xf32>")
    outs, off, bias = [], 0, 0
    for i, (r, b, t) in enumerate(zip(g.rows, g.biased, g.result_types())):
        v = f"%s{i}"
        body.append(f"    {v} = tensor.extract_slice %y[{off}] [{r}] [1] : tensor<{n}xf32> to tensor<{r}xf32>")
        if b:
            body.append(f"    %a{i} = arith.addf {v}, %b{bias} : tensor<{r}xf32>")
            v, bias = f"%a{i}", bias + 1
        if rank > 1:
            shape = ", ".join(map(str, (*g.x_shape[:-1], r)))
            body.append(f"    %e{i} = tensor.expand_shape {v} {all_dims} output_shape [{shape}] : "
                        f"tensor<{r}xf32> into {t}")
            v = f"%e{i}"
        outs.append(v)
        off += r
    params = ["%q", "%d", "%m", "%x"] + [f"%b{j}" for j in range(len(args) - 4)]
    sig = ", ".join(f"{p}: {t}" for p, t in zip(params, args))
    results = g.result_types()
    return f"""module {{
{executable(ex, obj, g.form, n, k, rows)}  func.func private @{g.name}({sig}) -> ({', '.join(results)}) {{
{chr(10).join(body)}
    return {', '.join(outs)} : {', '.join(results)}
  }}
}}
"""

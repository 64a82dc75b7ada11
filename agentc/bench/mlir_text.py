"""Benchmark kernels written directly as linalg-on-tensors MLIR text.

Text keeps the shapes, layouts and accumulator types exactly as chosen (an f16 GEMM that
accumulates in f32, a weight stored transposed), with no exporter in between; kernels that
agentc gets from PyTorch (softmax, layernorm, attention, top-k) come from torch_kernels.py
instead, so the bench measures the IR the compiler really produces for them.
"""

from __future__ import annotations


def tensor(shape, dtype: str) -> str:
    return f"tensor<{'x'.join(map(str, shape))}x{dtype}>" if shape else f"tensor<{dtype}>"


def _func(name: str, args: list[str], result: str, body: list[str]) -> str:
    params = ", ".join(f"%a{i}: {t}" for i, t in enumerate(args))
    lines = [f"func.func @{name}({params}) -> {result} {{", *[f"  {b}" for b in body], "}"]
    return "\n".join(lines) + "\n"


def _zeros(out: str, acc: str) -> list[str]:
    zero = "0.0" if acc.startswith("f") else "0"
    return [f"%zero = arith.constant {zero} : {acc}",
            f"%empty = tensor.empty() : {out}",
            f"%init = linalg.fill ins(%zero : {acc}) outs(%empty : {out}) -> {out}"]


def matmul(name: str, m: int, k: int, n: int, dtype: str, acc: str = "f32") -> str:
    """C[m,n] = A[m,k] @ B[k,n], accumulated (and returned) in `acc`."""
    a, b, c = tensor([m, k], dtype), tensor([k, n], dtype), tensor([m, n], acc)
    return _func(name, [a, b], c, _zeros(c, acc) + [
        f"%r = linalg.matmul ins(%a0, %a1 : {a}, {b}) outs(%init : {c}) -> {c}",
        f"return %r : {c}"])


def matmul_transposed_b(name: str, m: int, k: int, n: int, dtype: str, acc: str = "f32") -> str:
    """C[m,n] = A[m,k] @ W[n,k]^T: a linear layer with PyTorch's weight layout."""
    a, w, c = tensor([m, k], dtype), tensor([n, k], dtype), tensor([m, n], acc)
    ext = [] if dtype == acc else [f"%x = arith.extf %i : {dtype} to {acc}",
                                   f"%y = arith.extf %j : {dtype} to {acc}"]
    x, y = ("%x", "%y") if ext else ("%i", "%j")
    return _func(name, [a, w], c, _zeros(c, acc) + [
        ("%r = linalg.generic {indexing_maps = [affine_map<(m, n, k) -> (m, k)>, "
         "affine_map<(m, n, k) -> (n, k)>, affine_map<(m, n, k) -> (m, n)>], "
         'iterator_types = ["parallel", "parallel", "reduction"]} '
         f"ins(%a0, %a1 : {a}, {w}) outs(%init : {c}) {{"),
        f"^bb0(%i: {dtype}, %j: {dtype}, %o: {acc}):",
        *[f"  {e}" for e in ext],
        f"  %p = arith.mulf {x}, {y} : {acc}",
        f"  %s = arith.addf %p, %o : {acc}",
        f"  linalg.yield %s : {acc}",
        f"}} -> {c}",
        f"return %r : {c}"])


def matvec(name: str, n: int, k: int, dtype: str, acc: str = "f32") -> str:
    """y[n] = W[n,k] @ x[k]: decode's GEMV with the weight stored row-major per output."""
    w, x, y = tensor([n, k], dtype), tensor([k], dtype), tensor([n], acc)
    return _func(name, [w, x], y, _zeros(y, acc) + [
        f"%r = linalg.matvec ins(%a0, %a1 : {w}, {x}) outs(%init : {y}) -> {y}",
        f"return %r : {y}"])


def elementwise(name: str, op: str, n: int, dtype: str) -> str:
    """out[i] = a[i] <op> b[i] for op in addf, mulf."""
    t = tensor([n], dtype)
    return _func(name, [t, t], t, [
        f"%empty = tensor.empty() : {t}",
        ('%r = linalg.generic {indexing_maps = [affine_map<(i) -> (i)>, affine_map<(i) -> (i)>, '
         'affine_map<(i) -> (i)>], iterator_types = ["parallel"]} '
         f"ins(%a0, %a1 : {t}, {t}) outs(%empty : {t}) {{"),
        f"^bb0(%x: {dtype}, %y: {dtype}, %o: {dtype}):",
        f"  %s = arith.{op} %x, %y : {dtype}",
        f"  linalg.yield %s : {dtype}",
        f"}} -> {t}",
        f"return %r : {t}"])


def sum_rows(name: str, rows: int, cols: int, dtype: str) -> str:
    """out[r] = sum over c of x[r,c]."""
    x, y = tensor([rows, cols], dtype), tensor([rows], dtype)
    return _func(name, [x], y, _zeros(y, dtype) + [
        ('%r = linalg.generic {indexing_maps = [affine_map<(r, c) -> (r, c)>, '
         'affine_map<(r, c) -> (r)>], iterator_types = ["parallel", "reduction"]} '
         f"ins(%a0 : {x}) outs(%init : {y}) {{"),
        f"^bb0(%x: {dtype}, %o: {dtype}):",
        f"  %s = arith.addf %x, %o : {dtype}",
        f"  linalg.yield %s : {dtype}",
        f"}} -> {y}",
        f"return %r : {y}"])


def matmul_chain(name: str, n: int, size: int) -> str:
    """x @ w @ w ... n times: n dependent contractions, so n dispatches in one call; the
    slope over n is what each further dispatch of a kernel costs."""
    t = tensor([size, size], "f32")
    body = _zeros(t, "f32")
    prev = "%a0"
    for i in range(n):
        body.append(f"%m{i} = linalg.matmul ins({prev}, %a1 : {t}, {t}) outs(%init : {t}) -> {t}")
        prev = f"%m{i}"
    return _func(name, [t, t], t, [*body, f"return {prev} : {t}"])


def vecmat_chain(name: str, k: int, n: int, count: int, dtype: str) -> str:
    """Decode's dependent products: x[1,k] @ W1[k,n] @ W2[n,k] @ W3[k,n] ... with `count`
    distinct weights, as a layer stack streams distinct weights from memory. One call holds
    `count` dispatches, so a device whose per-call cost hides one small kernel shows them."""
    args, body, prev, width = [tensor([1, k], dtype)], [], "%a0", k
    for i in range(count):
        rows, cols = (k, n) if i % 2 == 0 else (n, k)
        x, w, out = tensor([1, width], dtype), tensor([rows, cols], dtype), tensor([1, cols], dtype)
        args.append(w)
        body += [f"%z{i} = arith.constant 0.0 : {dtype}",
                 f"%e{i} = tensor.empty() : {out}",
                 f"%f{i} = linalg.fill ins(%z{i} : {dtype}) outs(%e{i} : {out}) -> {out}",
                 (f"%m{i} = linalg.matmul ins({prev}, %a{i + 1} : {x}, {w}) "
                  f"outs(%f{i} : {out}) -> {out}")]
        prev, width = f"%m{i}", cols
    out = tensor([1, width], dtype)
    return _func(name, args, out, [*body, f"return {prev} : {out}"])


def identity(name: str) -> str:
    """No dispatch at all: the cost of one call through the runtime."""
    t = tensor([1], "f32")
    return _func(name, [t], t, [f"return %a0 : {t}"])

"""Compile a device module with IREE, cached by content hash.

The key covers the module text, the target, the flags and the compiler version, so an
unchanged graph recompiles from the cache. A compiler failure raises an error that keeps
the diagnostics and the exact command, and saves the input for a reproducer.
"""

from __future__ import annotations

import hashlib
from importlib.metadata import version

from agentc import store


class IreeCompileError(RuntimeError):
    pass


def cache_key(text: str, target: str, flags: tuple[str, ...]) -> str:
    """What a compile's result depends on: the input, the target, the flags, the compiler."""
    return hashlib.sha256("\0".join([text, target, *flags, version("iree-base-compiler")])
                          .encode()).hexdigest()


def first_error(e: Exception) -> str:
    """The first `error:` line of a compiler failure (else its first line)."""
    lines = str(e).splitlines() or [""]
    return next((ln for ln in lines if "error:" in ln), lines[0]).strip()


def compile_module(text: str, target: str, flags: tuple[str, ...], device: str) -> tuple[bytes, bool]:
    """Returns (vmfb bytes, cache hit)."""
    import iree.compiler as ic

    key = cache_key(text, target, flags)
    hit = store.lookup("vmfb", key)
    if hit is not None:
        return hit.read_bytes(), True
    try:
        vmfb = ic.compile_str(text, target_backends=[target], extra_args=list(flags))
    except ic.CompilerToolError as e:
        repro = store.cache_dir() / "repro" / f"{device}-{key[:16]}.mlir"
        store.write_file(repro, text.encode())
        raise IreeCompileError(f"iree-compile failed for the {device} module ({target}): {first_error(e)}; "
                               f"input saved to {repro}") from None
    store.put_bytes("vmfb", key, vmfb, ".vmfb")
    return vmfb, False

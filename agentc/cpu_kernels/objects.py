"""The kernels' object file: q4_1_gemv.c compiled by gcc for AVX-512 VNNI, once per source,
flags and compiler, kept in agentc's store. Its path holds its content hash, so a device
module that names it changes (and is compiled again) when the kernel does.

A machine without gcc or without AVX-512 VNNI gets no object; the compiler then keeps the
float32 form (`unavailable` says why, for the compile log)."""

from __future__ import annotations

import functools
import hashlib
import os
import shutil
import subprocess
from pathlib import Path

SOURCE = Path(__file__).with_name("q4_1_gemv.c")
CFLAGS = ("-O3", "-std=c17", "-mavx512f", "-mavx512bw", "-mavx512vl", "-mavx512vnni", "-mfma", "-ffreestanding",
          "-fPIC", "-fno-stack-protector", "-fvisibility=hidden", "-fno-plt", "-fno-asynchronous-unwind-tables")
# What the object's instructions need of the CPU (/proc/cpuinfo's names).
NEEDS = ("avx512f", "avx512bw", "avx512vl", "avx512_vnni", "fma")
VARIANTS = {"vnni": (), "exact": ("-DAGENTC_EXACT",), "empty": ("-DAGENTC_EMPTY",)}


class KernelBuildError(RuntimeError):
    pass


def cpu_flags() -> set[str]:
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return set()
    line = next((ln for ln in text.splitlines() if ln.startswith("flags")), "")
    return set(line.partition(":")[2].split())


@functools.cache
def unavailable() -> str | None:
    """Why this machine cannot build or run the kernels (None: it can)."""
    missing = [f for f in NEEDS if f not in cpu_flags()]
    if missing:
        return f"this CPU lacks {', '.join(missing)}"
    if shutil.which("gcc") is None:
        return "gcc is not installed"
    return None


@functools.cache
def _gcc_version() -> str:
    return subprocess.run(["gcc", "-dumpfullversion"], capture_output=True, text=True, check=True).stdout.strip()


def variant() -> str:
    """The variant builds link: `AGENTC_CPU_KERNEL` (exact: float activations, what the
    tests compare with transformers), else vnni."""
    chosen = os.environ.get("AGENTC_CPU_KERNEL", "vnni")
    if chosen not in VARIANTS:
        raise KernelBuildError(f"AGENTC_CPU_KERNEL={chosen!r}: expected one of {', '.join(VARIANTS)}")
    return chosen


def object_file(variant: str = "vnni") -> Path:
    """The compiled object (cached). `variant`: vnni (int8 activations, what builds use),
    exact (float activations, scalar: for checks), empty (no work: for timing what is around it)."""
    from agentc import store

    if (why := unavailable()) is not None:
        raise KernelBuildError(f"{SOURCE.name}: cannot build the CPU kernels ({why})")
    source = SOURCE.read_bytes()
    key = {"source": hashlib.sha256(source).hexdigest(), "flags": CFLAGS, "variant": variant, "gcc": _gcc_version()}

    def build(out: Path) -> None:
        r = subprocess.run(["gcc", *CFLAGS, *VARIANTS[variant], "-c", str(SOURCE), "-o", str(out)],
                           check=False, capture_output=True, text=True)
        if r.returncode:
            raise KernelBuildError(f"{SOURCE}: gcc failed: {(r.stderr.strip().splitlines() or ['?'])[0]}")

    return store.cached("cpu-kernels", key, build, ".o")

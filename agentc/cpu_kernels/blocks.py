"""GGUF's quantized blocks in the layouts q4_1_gemv.c reads (its comment says why each):
Q4_1 (4-bit values with a scale and a minimum per block of 32) and Q8_0 (signed bytes with a
scale per block). Every function takes blocks as (rows, k / 32, 32) values and (rows, k / 32)
scales and returns the kernel's three arguments, flat."""

from __future__ import annotations

import numpy as np

# form -> (the object's function, values per byte)
FORMS = {"q4_1": ("agentc_q4_1_gemv", 2), "q8_0": ("agentc_q8_0_gemv", 1)}
QK = 32  # values per block
MAX_K = 8192  # the kernel's largest row (q4_1_gemv.c: MAXK)


def fits(k: int) -> bool:
    """Whether the kernel takes rows of k values: whole pairs of blocks, at most MAX_K."""
    return k % (2 * QK) == 0 and k <= MAX_K


def pack_q4_1(q: np.ndarray, d: np.ndarray, m: np.ndarray) -> list[np.ndarray]:
    """Q4_1 values in 0..15, scales, minima -> [packed bytes, scales, minima]: a row's blocks
    in groups of 16 as 4 runs of 64 bytes, byte 4j + e of run u holding value 8u + e of block
    j (low nibble) and 8u + 4 + e (high); then the rest in pairs of 16-byte blocks, value e in
    byte e % 16 (low nibble for e < 16)."""
    n, nb, _ = q.shape
    g = nb // 16
    grouped = q[:, :16 * g].reshape(n, g, 16, 4, 2, 4).transpose(0, 1, 3, 4, 2, 5)  # (n, g, u, half, j, e)
    grouped = grouped[:, :, :, 0] | (grouped[:, :, :, 1] << 4)  # (n, g, u, j, e)
    rest = q[:, 16 * g:]
    rest = rest[..., :16] | (rest[..., 16:] << 4)  # (n, nb - 16 g, 16)
    packed = np.concatenate([grouped.reshape(n, -1), rest.reshape(n, -1)], axis=1).reshape(-1).view(np.int8)
    return [packed, np.asarray(d, np.float32).reshape(-1), np.asarray(m, np.float32).reshape(-1)]


def pack_q8_0(q: np.ndarray, d: np.ndarray) -> list[np.ndarray]:
    """Q8_0 values and scales -> [packed bytes, scales, 128 * d * sum(q) per block]: values in
    groups of 16 blocks as 8 runs of 64 bytes (byte 4j + e of run t: value 4t + e of block
    j), the rest as they are."""
    n, nb, _ = q.shape
    g = nb // 16
    grouped = q[:, :16 * g].reshape(n, g, 16, 8, 4).transpose(0, 1, 3, 2, 4)  # (n, g, t, j, e)
    packed = np.concatenate([grouped.reshape(n, -1), q[:, 16 * g:].reshape(n, -1)], axis=1).reshape(-1)
    c = (128.0 * d * q.astype(np.int32).sum(-1)).astype(np.float32)
    return [packed.astype(np.int8), np.asarray(d, np.float32).reshape(-1), c.reshape(-1)]


def quantize_q4_1(w: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(n, k) float32 -> Q4_1 blocks (values, scales, minima), as llama.cpp rounds them."""
    n, k = w.shape
    b = w.reshape(n, k // QK, QK)
    lo, hi = b.min(-1), b.max(-1)
    d = ((hi - lo) / 15).astype(np.float32)
    q = np.clip(np.round((b - lo[..., None]) / np.where(d == 0, 1, d)[..., None]), 0, 15).astype(np.uint8)
    return q, d, lo.astype(np.float32)


def dequantize(form: str, q: np.ndarray, d: np.ndarray, m: np.ndarray | None) -> np.ndarray:
    """The float32 matrix (rows, k) that blocks stand for."""
    w = q.astype(np.float32) * d[..., None] + (0 if m is None else m[..., None])
    return w.reshape(q.shape[0], -1).astype(np.float32)

"""Byte-level tokenizer: UTF-8 bytes plus PAD/BOS/EOS.

It needs no vocabulary file, handles any text, and is exact to invert, which is what the
tiny random-weight models of the test tier need. Real models bring their own tokenizers.
"""

from __future__ import annotations

import numpy as np

PAD, BOS, EOS = 256, 257, 258
VOCAB_SIZE = 259


def encode_padded(text: str, max_len: int) -> np.ndarray:
    """[BOS] + bytes, truncated to max_len and right-padded with PAD; shape (1, max_len)."""
    ids = [BOS] + list(text.encode("utf-8"))[: max_len - 1]
    ids += [PAD] * (max_len - len(ids))
    return np.asarray([ids], dtype=np.int32)


def encode_prompt(text: str, max_len: int) -> tuple[np.ndarray, np.ndarray]:
    """Prompt ids for a causal LM: [BOS] + the last max_len-1 bytes (the end of a prompt,
    where the question sits, matters most), right-padded. Returns (ids (1, max_len),
    length (1,))."""
    ids, length, _ = encode_prompt_counted(text, max_len)
    return ids, length


def encode_prompt_counted(text: str, max_len: int) -> tuple[np.ndarray, np.ndarray, int]:
    """encode_prompt, and how many bytes from the start did not fit."""
    data = list(text.encode("utf-8"))
    body = data[-(max_len - 1):] if max_len > 1 else []
    ids = [BOS] + body
    length = len(ids)
    ids += [PAD] * (max_len - length)
    return np.asarray([ids], dtype=np.int32), np.asarray([length], dtype=np.int32), len(data) - len(body)


def decode(tokens) -> str:
    """Token ids to text, stopping at the first EOS; special tokens are dropped."""
    out = bytearray()
    for t in (int(x) for x in tokens):
        if t == EOS:
            break
        if t < 256:
            out.append(t)
    return out.decode("utf-8", errors="replace")

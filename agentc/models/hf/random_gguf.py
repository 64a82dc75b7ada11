"""A small Llama GGUF file with random weights, quantized the way llama.cpp's files are
(Q4_1 linears, a Q8_0 token embedding that is also the head, float32 norms), with
SmolLM2's tokenizer and chat template copied from the packaged GGUF: what the fast tests
use to check the quantized CPU path (agentc.models.split_linears) against transformers
reading the same file.

    python -m agentc.models.hf.random_gguf OUT_DIR
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np


@dataclass(frozen=True)
class Shape:
    dim: int = 128
    ffn: int = 256
    layers: int = 2
    heads: int = 4
    kv_heads: int = 2
    context: int = 512
    std: float = 0.08


def write(out: Path, shape: Shape = Shape(), seed: int = 0) -> Path:
    """`out`/model.gguf (out is made); returns `out`, a model directory agentc reads."""
    import gguf

    from agentc.models import assets

    src = gguf.GGUFReader(str(assets.smollm2_gguf()))
    out.mkdir(parents=True, exist_ok=True)
    w = gguf.GGUFWriter(str(out / "model.gguf"), "llama")
    sizes = {"llama.block_count": shape.layers, "llama.context_length": shape.context,
             "llama.embedding_length": shape.dim, "llama.feed_forward_length": shape.ffn,
             "llama.attention.head_count": shape.heads, "llama.attention.head_count_kv": shape.kv_heads,
             "llama.rope.dimension_count": shape.dim // shape.heads}
    for name, field in src.fields.items():
        if name.startswith("GGUF.") or name == "general.architecture":
            continue
        value = sizes.get(name, field.contents())
        w.add_key_value(name, value, field.types[0], field.types[1] if len(field.types) > 1 else None)
    vocab = len(src.fields["tokenizer.ggml.tokens"].contents())
    rng = np.random.default_rng(seed)
    Q = gguf.GGMLQuantizationType

    def tensor(name: str, rows: int, cols: int, qtype=Q.Q4_1) -> None:
        a = (rng.standard_normal((rows, cols)) * shape.std).astype(np.float32)
        w.add_tensor(name, gguf.quants.quantize(a, qtype), raw_dtype=qtype)

    hd = shape.dim // shape.heads
    tensor("token_embd.weight", vocab, shape.dim, Q.Q8_0)
    w.add_tensor("output_norm.weight", np.ones(shape.dim, np.float32))
    for i in range(shape.layers):
        b = f"blk.{i}."
        w.add_tensor(b + "attn_norm.weight", (1 + 0.1 * rng.standard_normal(shape.dim)).astype(np.float32))
        w.add_tensor(b + "ffn_norm.weight", (1 + 0.1 * rng.standard_normal(shape.dim)).astype(np.float32))
        tensor(b + "attn_q.weight", shape.dim, shape.dim)
        tensor(b + "attn_k.weight", shape.kv_heads * hd, shape.dim)
        tensor(b + "attn_v.weight", shape.kv_heads * hd, shape.dim)
        tensor(b + "attn_output.weight", shape.dim, shape.dim)
        tensor(b + "ffn_gate.weight", shape.ffn, shape.dim)
        tensor(b + "ffn_up.weight", shape.ffn, shape.dim)
        tensor(b + "ffn_down.weight", shape.dim, shape.ffn)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return out


if __name__ == "__main__":
    print(write(Path(sys.argv[1])))

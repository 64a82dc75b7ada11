"""The compute functions that model ops decompose into, and their MLIR.

A kernel is one exported linalg function (`<kernel>_impl`, weights first) plus the
`ml_program` globals holding its weights and a wrapper (`<kernel>`) that loads the globals
and calls the implementation. Operator IR calls the wrapper with activations only, so a
call's operands are exactly the data that moves between operators; weights stay resident.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from agentc.lazy import lazy_import
from agentc.models import forms, half_weights, registry, split_linears, tokenizer
from agentc.models.export import export_function
from agentc.models.ranking import top_k

torch = lazy_import("torch")

@dataclass
class Kernel:
    symbol: str  # wrapper function name, e.g. "tiny_lm__prefill"
    group: str  # weight group, e.g. "tiny-lm" or "index:facts"
    params: dict[str, np.ndarray]  # weight name -> value, in argument order
    impl_text: str  # the exporter's module, holding func @<impl_name>
    # runtime (cuda, ...) -> the same function written for that runtime's code generation;
    # a device module of that runtime takes it instead of impl_text.
    variants: dict[str, str] = field(default_factory=dict)
    # The function's name in impl_text and the variants: `<symbol>_impl`, or, for a
    # function shared by several layers, the first layer's. decompose-agent-ops renames it
    # (SymbolTable) to `<symbol>_impl` as it inserts it.
    impl_name: str = ""

    def __post_init__(self):
        self.impl_name = self.impl_name or f"{self.symbol}_impl"


def variant_symbol(symbol: str, runtime: str) -> str:
    """The implementation of kernel `symbol` written for `runtime` (Kernel.variants)."""
    return f"{symbol}_impl__{runtime}"


def impl_for(funcs: dict, symbol: str, runtime: str | None):
    """The implementation a device of `runtime` runs: its own variant, else the default."""
    if runtime and (own := funcs.get(variant_symbol(symbol, runtime))) is not None:
        return own
    return funcs[symbol + "_impl"]


def sanitize(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_]", "_", name)


def _kernel(group: str, op: str, fn, params: dict, acts: list) -> Kernel:
    symbol = f"{sanitize(group)}__{op}"
    args = [params[n] for n in params] + list(acts)
    key = {"group": group, "op": op, "weights": _weights_key(params)}
    text = export_function(fn, args, symbol + "_impl", list(params), key)
    return Kernel(symbol, group, params, text)


def _weights_key(params: dict) -> list:
    # Shapes, not values: weights are runtime parameters, so values never change the code.
    return [(n, list(a.shape), str(a.dtype)) for n, a in params.items()]


def _shared_kernels(model_obj, op: str, fn, layers: list[tuple[str, str]], acts: list,
                    variants: dict[str, dict] | None = None) -> list[Kernel]:
    """One exported function reused by several layers: `layers` lists (symbol, group)
    pairs whose groups hold weights of identical shapes. The function is exported (and
    cached) once; each layer gets a copy, renamed to `<symbol>_impl` when it is inserted
    (Kernel.impl_name), so device modules stay
    self-contained and IREE deduplicates the identical dispatches when compiling."""
    first = _model_kernel(model_obj, op, fn, layers[0][1], acts, variants=variants)
    groups = model_obj.groups
    readers, spec = _copy_forms(variants)
    return [Kernel(symbol, group, {**groups[group], **(_copies(model_obj, group, groups[group], spec) if readers else {})},
                   first.impl_text, dict(first.variants), first.impl_name)
            for symbol, group in layers]


def _copy_forms(variants: dict[str, dict] | None) -> tuple[set[str], tuple[bool, str]]:
    """The runtimes that read copies of the weights (bfloat16 ones, or stacked query, key and
    value weights: agentc.models.half_weights), and the copies' (stack, dtype). The copies are
    one set that every form of a kernel takes, so the runtimes that read them must agree."""
    readers = {r: (attrs.get("projections") == "fused", attrs.get("weight_dtype", "float32"))
               for r, attrs in (variants or {}).items()
               if attrs.get("weight_dtype") == "bfloat16" or attrs.get("projections") == "fused"}
    specs = set(readers.values())
    if len(specs) > 1:
        raise forms.FormError(f"RUNTIME_FORMS: runtimes {', '.join(sorted(readers))} read different weight copies "
                              f"({', '.join(f'{r}: stack={s}, {d}' for r, (s, d) in sorted(readers.items()))})")
    return set(readers), next(iter(specs), (False, "float32"))


def _copies(model_obj, group: str, params: dict, spec: tuple[bool, str]) -> dict:
    """The copies of weight group `group` (its weights `params`), made once per model: a
    layer's group serves its prefill and its decode kernels, and step granularity's
    `<name>/all` its prefill, decode and chunk kernels."""
    made = model_obj.__dict__.setdefault("_weight_copies", {})
    if (group, spec) not in made:
        made[group, spec] = half_weights.copies(params, *spec)
    return made[group, spec]


def _model_kernel(model_obj, op: str, fn, group: str | None, acts: list, params: dict | None = None,
                  variants: dict[str, dict] | None = None) -> Kernel:
    """A kernel of a layered model bound to weight `group` (None: no weights); `params`
    stands for a group the model does not keep (step granularity's `<name>/all`). The
    export cache key needs no model source: export_function hashes all of agentc.models.

    `variants` maps a runtime to model attributes (e.g. {"cuda": {"decode_attention":
    "per_head"}}) under which the function is exported again for that runtime; a variant
    that comes out identical to the default is dropped. A runtime whose `weight_dtype` is
    bfloat16 reads bfloat16 copies of the weights, and one whose `projections` are fused
    reads each layer's query, key and value weights stacked (agentc.models.half_weights):
    copies that every form of the kernel then takes."""
    name = model_obj.config.name
    if params is None:
        params = model_obj.groups[group] if group else {}
    symbol = f"{sanitize(getattr(model_obj, 'key', name))}__{op}"
    args = list(params.values()) + list(acts)
    key = {"group": name, "op": op, "weights": _weights_key(params)}
    text = export_function(fn, args, symbol + "_impl", list(params), key)
    readers, spec = _copy_forms(variants)
    copies = _copies(model_obj, group, params, spec) if readers and params else {}
    texts = {}
    for runtime, attrs in (variants or {}).items():
        clone = forms.in_form(model_obj, attrs)
        variant_fn, variant_args, names = getattr(clone, fn.__name__), args, list(params)
        if runtime in readers and copies:
            variant_fn = half_weights.reading_copies(variant_fn, list(params), list(copies))
            variant_args = list(params.values()) + list(copies.values()) + list(acts)
            names += list(copies)
        variant = export_function(variant_fn, variant_args, symbol + "_impl", names, dict(key, variant=attrs))
        if variant != text:
            texts[runtime] = variant
    if copies:  # the other forms take the copies too, unread
        types = half_weights.tensor_types(copies.values())

        def widened(t: str) -> str:
            return split_linears.with_unread_weights(t, symbol + "_impl", len(params), types)

        text = widened(text)
        texts = {r: t if r in readers else widened(t) for r, t in texts.items()}
    return Kernel(symbol, group or name, {**params, **copies}, text, texts)


def _forms(model_obj, runtimes) -> dict[str, dict]:
    """The model's per-runtime forms (agentc.models.forms) for the runtimes a build has
    (None: all of them), so a cpu-only build neither exports nor parses cuda variants."""
    chosen = {r: attrs for r, attrs in getattr(model_obj, "RUNTIME_FORMS", {}).items()
              if runtimes is None or r in runtimes}
    for runtime, attrs in chosen.items():
        forms.check(type(model_obj).__name__, runtime, attrs)
    return chosen


def _layered_encoder_kernels(enc, runtimes=None) -> list[Kernel]:
    """embeddings, block<i> (one function, per-layer weights), pool."""
    c = enc.config
    ids = enc.tokenize("example")
    hidden = np.zeros((1, c.max_len, c.dim), np.float32)  # only shapes matter
    layers = [(f"{sanitize(c.name)}__block{i}", f"{c.name}/l{i}") for i in range(c.layers)]
    per_runtime = _forms(enc, runtimes)
    return [
        _model_kernel(enc, "embeddings", enc.embeddings, f"{c.name}/emb", [ids], variants=per_runtime),
        *_shared_kernels(enc, "block", enc.block, layers, [hidden, ids], per_runtime),
        _model_kernel(enc, "pool", enc.pool, None, [hidden, ids]),
    ]


def encoder_kernels(model: str, runtimes=None) -> list[Kernel]:
    """`runtimes`: the runtimes whose variants to export (None: all)."""
    enc = registry.encoder(model)
    if getattr(enc, "layered", False):
        return _layered_encoder_kernels(enc, runtimes)
    c = enc.config
    ids = tokenizer.encode_padded("example", c.max_len)
    hidden = np.zeros((1, c.max_len, c.dim), np.float32)  # encode's output: only its shape matters
    return [
        _kernel(model, "encode", enc.encode, enc.params, [ids]),
        _kernel(model, "pool", enc.pool, {}, [hidden, ids]),
    ]


def sampler_kernel(model: str, temperature: float, top_k: int, top_p: float) -> Kernel:
    """Sampling from a model's logits with a uniform draw (agentc.models.sampling.sample):
    one kernel per model vocabulary and setting, no weights."""
    from agentc.models import sampling

    dec = registry.decoder(model)
    op = sanitize(f"sample_t{temperature:g}_k{top_k}_p{top_p:g}")

    def sample(logits, u):
        return sampling.sample(logits, u, temperature, top_k, top_p)

    logits = np.zeros((1, dec.config.vocab), np.float32)
    return _model_kernel(dec, op, sample, None, [logits, np.zeros((1,), np.float32)])


def reranker_kernels(model: str, k: int) -> list[Kernel]:
    """A cross-encoder over k (query, passage) pairs: embeddings, block<i> (one function,
    per-layer weights), score, order; each named for k (their shapes depend on it)."""
    rr = registry.reranker(model)
    c = rr.config
    ids = np.zeros((k, c.max_len), np.int32)  # only shapes matter
    hidden = np.zeros((k, c.max_len, c.dim), np.float32)
    layers = [(f"{sanitize(c.name)}__block{i}_k{k}", f"{c.name}/l{i}") for i in range(c.layers)]
    return [
        _model_kernel(rr, f"embeddings_k{k}", rr.embeddings, f"{c.name}/emb", [ids, ids]),
        *_shared_kernels(rr, f"block_k{k}", rr.block, layers, [hidden, ids]),
        _model_kernel(rr, f"score_k{k}", rr.score, f"{c.name}/head", [hidden]),
        _model_kernel(rr, f"order_k{k}", rr.order, None, [np.zeros((k,), np.float32), np.zeros((1, k), np.int32)]),
    ]


def similarity(c, q):
    """Vector search's scores: queries (B, D) against the corpus (N, D) -> (B, N)."""
    return q @ c.T


def index_kernels(index, k: int) -> list[Kernel]:
    corpus = index.embeddings
    group = f"index:{index.name}"
    query = corpus[:1]

    def topk(scores):
        return top_k(scores, k)

    scores = (query @ corpus.T).astype(np.float32)
    return [
        _kernel(group, "similarity", similarity, {"embeddings": corpus}, [query]),
        _kernel(group, f"top{k}", topk, {}, [scores]),
    ]


def _layered_decoder_kernels(dec, granularity: str, runtimes=None) -> list[Kernel]:
    """Layer granularity: embed/head (prefill and decode), prefill_l<i> and decode_l<i>
    (two functions, per-layer weights), sample. Step granularity: prefill, decode, sample
    over the whole model (weight group `<name>/all`)."""
    c = dec.config
    P, S, D, hd = c.prompt_len, c.cache_len, c.dim, c.head_dim  # pe: what every layer gets besides x
    ids, length = dec.tokenize_prompt("example")
    i32 = np.zeros((1,), np.int32)
    logits = np.zeros((1, c.vocab), np.float32)
    sample = _model_kernel(dec, "sample", dec.sample, None, [logits])
    per_runtime = _forms(dec, runtimes)
    if granularity == "step":
        kc = np.zeros((1, c.kv_heads, S, hd), np.float32)  # one layer's
        whole = functools.partial(_model_kernel, dec, group=f"{c.name}/all", params=dec.all_group,
                                  variants=per_runtime)
        acts = [i32, length, *[kc] * (2 * c.layers)]
        decode = whole("decode", dec.decode, acts=acts)
        if runtimes is None or "cpu" in runtimes:
            decode = _quantized(dec, decode, acts)
        return [whole("prefill", dec.prefill, acts=[ids, length]), decode, sample]
    emb = f"{c.name}/embed"
    x_p = np.zeros((1, P, D), np.float32)
    x_d = np.zeros((1, 1, D), np.float32)
    pe_p, pe_d = dec.position_examples(P), dec.position_examples(1)
    kc = np.zeros((1, c.kv_heads, S, hd), np.float32)
    sym = sanitize(dec.key)
    pre = [(f"{sym}__prefill_l{i}", f"{c.name}/l{i}") for i in range(c.layers)]
    dec_l = [(f"{sym}__decode_l{i}", f"{c.name}/l{i}") for i in range(c.layers)]
    ends = functools.partial(_model_kernel, dec, group=emb, variants=per_runtime)
    return [
        ends("embed_prefill", dec.embed_prefill, acts=[ids]),
        *_shared_kernels(dec, "block_prefill", dec.block_prefill, pre, [x_p, *pe_p], per_runtime),
        ends("head_prefill", dec.head_prefill, acts=[x_p, length]),
        ends("embed_decode", dec.embed_decode, acts=[i32, length]),
        *_shared_kernels(dec, "block_decode", dec.block_decode, dec_l, [x_d, *pe_d, length, kc, kc],
                         per_runtime),
        ends("head_decode", dec.head_decode, acts=[x_d]),
        sample,
    ]


def _quantized(dec, step: Kernel, acts: list) -> Kernel:
    """The decode step with a cpu form streaming the model file's quantized blocks
    (agentc.models.split_linears), where the file has them and this machine can build the
    kernels; else `step` as it is. Every form takes the blocks, so one wrapper calls each."""
    from agentc.cpu_kernels import objects
    from agentc.models import split_linears
    from agentc.models.assets import file_key
    from agentc.models.export import _models_digest
    from agentc.models.hf import gguf_blocks

    source = getattr(getattr(dec, "ckpt", None), "gguf", None)
    if source is None or objects.unavailable() is not None:
        return step
    objects.variant()  # a bad AGENTC_CPU_KERNEL fails now, not after the export
    key = {"model": dec.key, "config": repr(dec.config), "models": _models_digest(), "torch": torch.__version__,
           "file": file_key(Path(source).resolve())}
    q = split_linears.quantized_step(dec.decode, dec.all_group, acts, lambda: gguf_blocks.matcher(source),
                                     step.impl_name, key)
    if q is None:
        return step
    types = split_linears.tensor_types(q.params.values())

    def widened(text: str) -> str:
        return split_linears.with_unread_weights(text, step.impl_name, len(step.params), types)

    cpu = q.text
    own = dec.all_group
    if halves := [a for n, a in step.params.items() if n not in own]:  # a cuda form's copies
        cpu = split_linears.with_unread_weights(cpu, step.impl_name, len(step.params) - len(halves),
                                        half_weights.tensor_types(halves))
    return Kernel(step.symbol, step.group, {**step.params, **q.params}, widened(step.impl_text),
                  {**{r: widened(t) for r, t in step.variants.items()}, "cpu": cpu}, step.impl_name)


def decoder_kernels(model: str, granularity: str = "layer", runtimes=None) -> list[Kernel]:
    """`runtimes`: the runtimes whose variants to export (None: all)."""
    dec = registry.decoder(model)
    if getattr(dec, "layered", False):
        return _layered_decoder_kernels(dec, granularity, runtimes)
    c = dec.config
    ids, length = tokenizer.encode_prompt("example", c.prompt_len)
    # Example inputs for the later operators: only their shapes and dtypes matter.
    logits = np.zeros((1, c.vocab), np.float32)
    kc = vc = np.zeros((c.layers, 1, c.heads, c.cache_len, c.dim // c.heads), np.float32)
    token = np.zeros((1,), np.int32)
    return [
        _kernel(model, "prefill", dec.prefill, dec.params, [ids, length]),
        _kernel(model, "decode", dec.decode, dec.params, [token, length, kc, vc]),
        _kernel(model, "sample", dec.sample, {}, [logits]),
    ]


def chunk_kernel(model: str, step: Kernel, n: int, sampling: tuple[float, int, float] | None = None) -> Kernel:
    """n decode steps of `step` (the model's `decode` kernel), each followed by the token
    choice (greedy, or `sampling` = (temperature, top_k, top_p) from one uniform per step),
    as one call (agentc.models.decode_loop); its runtime variants are the step's, looped."""
    from agentc.models import decode_loop
    from agentc.models import sampling as token_choice

    dec = registry.decoder(model)
    tag = "" if sampling is None else "_" + sanitize("t{:g}_k{}_p{:g}".format(*sampling))
    symbol = f"{step.symbol.rsplit('__', 1)[0]}__decode_x{n}{tag}"
    if sampling is None:
        choose = dec.sample
    else:
        def choose(logits, u):
            return token_choice.sample(logits, u, *sampling)
    advance = decode_loop.advance_fn(choose, dec.eos, sampling is not None)
    i32 = np.zeros((1,), np.int32)
    acts = [np.zeros((1, dec.config.vocab), np.float32), i32, i32, i32]
    acts += [np.zeros((1,), np.float32)] if sampling is not None else []
    adv = export_function(advance, acts, "advance", [], {"model": model, "op": "advance", "eos": dec.eos,
                                                          "sampling": sampling})

    def looped(text: str) -> str:
        return decode_loop.chunk_text(text, step.impl_name, adv, f"{symbol}_impl", len(step.params), n,
                                      sampling is not None)

    return Kernel(symbol, step.group, step.params, looped(step.impl_text),
                  {runtime: looped(text) for runtime, text in step.variants.items()})

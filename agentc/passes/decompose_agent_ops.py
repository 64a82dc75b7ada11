"""decompose-agent-ops: model-level agent ops -> granular operators.

  agent.embed          -> call @<enc>__encode, call @<enc>__pool (tiny), or, for layered
                          models, call @<enc>__embeddings, @<enc>__block<i> per layer, @<enc>__pool
  agent.vector_search  -> call @index_<name>__similarity, call @index_<name>__top<k>; for an
                          index with search="ann", one agent.ann_search host op (FAISS)
  agent.module         -> call @module_<name>__forward (the user's torch module, its weights resident)
  agent.rerank         -> agent.pair_tokenize (query, passages), call @<rr>__embeddings_k<k>,
                          @<rr>__block<i>_k<k> per layer, @<rr>__score_k<k>, @<rr>__order_k<k>
  agent.llm            -> agent.tokenize (prompt ids + length), call @<lm>__prefill,
                          call @<lm>__sample, then per step agent.stop_at_eos of the last
                          token (later steps are skipped after end-of-turn), call
                          @<lm>__decode and call @<lm>__sample, and agent.detokenize of all
                          sampled tokens. With a decode chunk of N, one call
                          @<lm>__decode_x<N> per N tokens instead (steps, token choice and
                          end-of-turn on the device: agentc.models.decode_loop), the
                          stop check on the host once per chunk.
                          Layered models with granularity "layer" instead
                          get embed/prefill_l<i>.../head per prompt and embed/decode_l<i>
                          .../head per generated token, each layer's KV cache threaded
                          through its own operators; "step" keeps one call per step.

Each model's compute functions are added once (see agentc.models.kernels). Every op created keeps
the source location of the op it replaces, under a name `<node>/<operator>` so diagnostics,
plans and traces can name operators individually.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from torch_mlir import ir
from torch_mlir.dialects import func as func_d
from torch_mlir.dialects import ml_program

from agentc.ir import MODEL_OPS
from agentc.ir.emit import NAME, op_name, source_loc
from agentc.models import kernels, registry
from agentc.models.irpa import param_key
from agentc.passes.moved_function import move_function
from agentc.passes.options import check_options


@dataclass
class DecomposeAgentOps:
    """Options: `indexes` maps index names to VectorIndex objects (corpus embeddings are
    weights of the search kernels)."""

    indexes: dict = field(default_factory=dict)
    granularity: str = "layer"  # for llm ops that do not set one (the compiler's choice)
    # Runtimes of the build's devices: kernels carry their variants for these only
    # (None: for every runtime a model has a form for).
    runtimes: frozenset[str] | None = None
    modules: dict = field(default_factory=dict)  # agentc.module name -> the torch module
    # Decode steps per device call at step granularity for llm ops that do not set one: a
    # number, or `choose(decode steps, {runtime or None: the step's func op}) -> number` (the compiler's,
    # agentc.cost.decode_chunk); None: 1.
    decode_chunk: object = None
    NAME = "decompose-agent-ops"

    @classmethod
    def from_options(cls, opts: dict[str, str]) -> DecomposeAgentOps:
        """`decompose-agent-ops{granularity=step decode-chunk=8 runtimes=cpu,cuda index=facts:corpus.txt}`
        (index: NAME:PATH[:ENCODER], several separated by ';')."""
        from agentc.frontend.index import VectorIndex

        check_options(opts, ('granularity', 'decode-chunk', 'runtimes', 'index'))
        indexes = {}
        for spec in filter(None, opts.get("index", "").split(";")):
            name, _, rest = spec.partition(":")
            path, _, encoder = rest.partition(":")
            indexes[name] = VectorIndex(name, Path(path).resolve(), encoder or "tiny-encoder")
        granularity = opts.get("granularity", "layer")
        if granularity not in ("layer", "step"):
            raise ValueError(f"granularity: expected layer or step, got '{granularity}'")
        runtimes = frozenset(filter(None, opts["runtimes"].split(","))) if "runtimes" in opts else None
        chunk = opts.get("decode-chunk", "1")
        if not chunk.isdigit() or int(chunk) < 1:
            raise ValueError(f"decode-chunk: expected a whole number >= 1, got '{chunk}'")
        return cls(indexes, granularity, runtimes, decode_chunk=int(chunk))

    def __post_init__(self):
        self._added: dict[str, dict[str, kernels.Kernel]] = {}
        self.weights: dict[str, dict] = {}  # group -> {param: array}, for the build

    def __call__(self, op: ir.Operation, pass_=None) -> None:
        module_body = op.regions[0].blocks[0]
        # The module's symbols, kept up to date as kernels are added: looking one up by
        # walking the module for each of ~1,000 calls made the pass quadratic.
        self._funcs: dict[str, ir.FunctionType] = {}
        self._impls: dict[str, ir.Operation] = {}  # kernel implementations added, by symbol
        self._globals: set[str] = set()
        for o in module_body.operations:
            self._record(o)
        targets = []
        for fn in module_body.operations:
            if fn.operation.name != "func.func":
                continue
            for block in fn.regions[0].blocks:
                for inner in block.operations:
                    if inner.operation.name in MODEL_OPS:
                        targets.append(inner.operation)
        for target in targets:
            self._rewrite(target, module_body)

    # -- kernels ----------------------------------------------------------------------
    def _ensure(self, key: str, make, module_body: ir.Block) -> dict[str, kernels.Kernel]:
        if key in self._added:
            return self._added[key]
        ks = {k.symbol.split("__", 1)[1]: k for k in make()}
        for k in ks.values():
            self._insert_kernel(k, module_body)
            if k.params:
                self.weights.setdefault(k.group, {}).update(k.params)
        self._added[key] = ks
        return ks

    def _record(self, o) -> None:
        name = o.operation.name
        if name == "func.func":
            sym = ir.StringAttr(o.attributes["sym_name"]).value
            self._funcs[sym] = ir.FunctionType(ir.TypeAttr(o.attributes["function_type"]).value)
        elif name == "ml_program.global":
            self._globals.add(ir.StringAttr(o.attributes["sym_name"]).value)

    def _insert_kernel(self, k: kernels.Kernel, module_body: ir.Block) -> None:
        """The implementation (renamed to `<symbol>_impl`), its weights as `ml_program`
        globals, and the wrapper `<symbol>` that loads them and calls it; a runtime's own
        formulation goes beside it as `<symbol>_impl__<runtime>`."""
        if k.symbol in self._funcs:
            return  # shared by two decompositions of one model (e.g. `sample`)
        impl = self._move_function(k.impl_text, k.impl_name, f"{k.symbol}_impl", module_body)
        ftype = ir.FunctionType(ir.TypeAttr(impl.attributes["function_type"]).value)
        n_w = len(k.params)
        weights = [(param_key(k.group, p), t) for p, t in zip(k.params, ftype.inputs[:n_w])]
        with ir.InsertionPoint(module_body), ir.Location.unknown():  # after the implementation
            for g, t in weights:
                if g not in self._globals:  # weights shared with a kernel already added
                    self._record(ml_program.GlobalOp(g, ir.TypeAttr.get(t), sym_visibility="private",
                                                     value=ir.Attribute.parse(f"#ml_program.extern : {t}")))
            wrapper = func_d.FuncOp(k.symbol, (list(ftype.inputs[n_w:]), list(ftype.results)),
                                    visibility="private")
            wrapper.attributes["agent.kernel"] = ir.UnitAttr.get()
            wrapper.attributes["agent.weights"] = ir.StringAttr.get(k.group)
            entry = wrapper.add_entry_block()
            with ir.InsertionPoint(entry):
                loads = [ml_program.GlobalLoadConstOp(t, ir.FlatSymbolRefAttr.get(g)).result for g, t in weights]
                call = func_d.CallOp(list(ftype.results), ir.FlatSymbolRefAttr.get(f"{k.symbol}_impl"),
                                     loads + list(entry.arguments))
                func_d.ReturnOp(list(call.results))
        self._record(wrapper)
        for runtime, variant in k.variants.items():
            self._move_function(variant, k.impl_name, kernels.variant_symbol(k.symbol, runtime), module_body)

    def _move_function(self, text: str, name: str, new_name: str, module_body: ir.Block):
        """agentc.passes.moved_function, recorded."""
        moved = move_function(text, name, new_name, module_body, self._funcs)
        for op in moved:
            self._record(op)
        self._impls[new_name] = moved[-1]
        return moved[-1]

    # -- rewrites ---------------------------------------------------------------------
    def _rewrite(self, op: ir.Operation, module_body: ir.Block) -> None:
        node = op_name(op) or op.name
        src = source_loc(op.location)
        base = ir.Location.file(src.file, src.line, 0)

        def loc(suffix: str) -> ir.Location:
            return ir.Location.name(f"{node}/{suffix}", childLoc=base)

        def named(suffix: str) -> ir.StringAttr:
            return ir.StringAttr.get(f"{node}/{suffix}")

        def call(kernel: kernels.Kernel, operands, suffix: str) -> ir.Operation:
            impl_results = self._result_types(kernel.symbol)
            return ir.Operation.create(
                "func.call", results=impl_results, operands=list(operands),
                attributes={"callee": ir.FlatSymbolRefAttr.get(kernel.symbol), NAME: named(suffix)},
                loc=loc(suffix))

        attrs = op.attributes
        with ir.InsertionPoint(op):
            if op.name == "agent.embed":
                model = ir.StringAttr(attrs["model"]).value
                ks = self._ensure(f"enc:{model}", lambda: kernels.encoder_kernels(model, self.runtimes), module_body)
                ids = op.operands[0]
                if "embeddings" in ks:  # layered: embeddings, block<i>..., pool
                    x = call(ks["embeddings"], [ids], "embeddings").results[0]
                    i = 0
                    while f"block{i}" in ks:
                        x = call(ks[f"block{i}"], [x, ids], f"block{i}").results[0]
                        i += 1
                    out = call(ks["pool"], [x, ids], "pool").results[0]
                else:
                    hidden = call(ks["encode"], [ids], "encode")
                    out = call(ks["pool"], [hidden.results[0], ids], "pool").results[0]
            elif op.name == "agent.vector_search":
                name, k = ir.StringAttr(attrs["index"]).value, ir.IntegerAttr(attrs["k"]).value
                index = self.indexes[name]
                if index.search == "ann":
                    out = self._ann_search(op, index, k, named, loc)
                else:
                    ks = self._ensure(f"index:{name}:{k}", lambda: kernels.index_kernels(index, k), module_body)
                    scores = call(ks["similarity"], [op.operands[0]], "similarity")
                    out = call(ks[f"top{k}"], [scores.results[0]], f"top{k}").results[0]
            elif op.name == "agent.rerank":
                out = self._rerank(op, attrs, call, named, loc, module_body)
            elif op.name == "agent.module":
                self._module(op, attrs, call, module_body)
                return
            else:  # agent.llm
                model = ir.StringAttr(attrs["model"]).value
                steps = ir.IntegerAttr(attrs["max_tokens"]).value
                gran = ir.StringAttr(attrs["granularity"]).value if "granularity" in attrs else self.granularity
                ks = self._ensure(f"lm:{model}:{gran}", lambda: kernels.decoder_kernels(model, gran, self.runtimes),
                                  module_body)
                layered = "embed_prefill" in ks
                first = ks["embed_prefill" if layered else "prefill"]
                head = ks["head_prefill"] if layered else first
                ids_t = self._input_types(first.symbol)[0]
                len_t = self._input_types(head.symbol)[-1]
                tok = ir.Operation.create(
                    "agent.tokenize", results=[ids_t, len_t], operands=[op.operands[0]],
                    attributes={"model": ir.StringAttr.get(model), NAME: named("tokenize")}, loc=loc("tokenize"))
                ids, length = tok.results
                i64 = ir.IntegerType.get_signless(64)
                eos = ir.IntegerAttr.get(i64, registry.decoder(model).eos)
                stops = attrs["stop"] if "stop" in attrs else None  # noqa: SIM401 (no get on MLIR attributes)

                def stop(tokens, i):
                    """The last token, passed to the next step only if generation goes on:
                    not end-of-turn, and (with stop strings) no stop string in the text."""
                    if stops is None:
                        name, operands, extra = "agent.stop_at_eos", tokens[-1:], {}
                    else:
                        name, operands, extra = "agent.stop_at_text", tokens, {"model": ir.StringAttr.get(model),
                                                                              "stop": stops}
                    return ir.Operation.create(name, results=[tokens[-1].type], operands=operands,
                                               attributes={"eos": eos, **extra, NAME: named(f"stop{i}")},
                                               loc=loc(f"stop{i}")).results[0]

                sample, uniforms, sampling = self._sampler(model, attrs, ks, call, named, loc, module_body)
                if layered:
                    tokens = self._generate_layered(ks, call, stop, sample, ids, length, steps)
                else:
                    n = self._chunk(attrs, ks["decode"], steps - 1)

                    def chunk(m: int, i: int):
                        """The m-step chunk kernel and its extra operands (the draws of steps i..)."""
                        made = self._ensure(f"chunk:{model}:{gran}:{m}:{sampling}",
                                            lambda: [kernels.chunk_kernel(model, ks["decode"], m, sampling)],
                                            module_body)
                        return next(iter(made.values())), ([] if sampling is None else [uniforms(i, m)])

                    tokens = self._generate(ks, call, stop, sample, ids, length, steps, n, chunk)
                extra = {"stop": stops} if stops is not None else {}
                out = ir.Operation.create(
                    "agent.detokenize", results=[op.results[0].type], operands=tokens,
                    attributes={"model": ir.StringAttr.get(model), **extra, NAME: named("detokenize")},
                    loc=loc("detokenize")).results[0]
        op.results[0].replace_all_uses_with(out)
        op.erase()

    def _module(self, op, attrs, call, module_body) -> None:
        """One call of the module's kernel (agentc.models.module_kernel); every result of
        the agent op is replaced."""
        import numpy as np

        from agentc.models.module_kernel import module_kernel

        callee = ir.StringAttr(attrs["callee"]).value
        if callee not in self.modules:
            raise ValueError(f"agent.module '{callee}': no such module given to decompose-agent-ops")
        examples = []
        for v in op.operands:
            t = ir.RankedTensorType(v.type)
            dtype = np.int32 if isinstance(t.element_type, ir.IntegerType) else np.float32
            examples.append(np.zeros(t.shape, dtype))
        (kernel,) = self._ensure(f"module:{callee}", lambda: [module_kernel(callee, self.modules[callee], examples)],
                                 module_body).values()
        new = call(kernel, list(op.operands), "forward")
        for old, res in zip(op.results, new.results):
            old.replace_all_uses_with(res)
        op.erase()

    @staticmethod
    def _ann_search(op, index, k, named, loc):
        """Approximate search: one host op over the index's FAISS index, charged the
        latency measured here (agentc.frontend.ann_index)."""
        from agentc.frontend import ann_index

        m = ann_index.measure(index.ann_bytes, k)
        where = loc("ann")
        f64 = ir.F64Type.get()
        attrs = {"index": ir.StringAttr.get(index.name), "k": ir.IntegerAttr.get(ir.IntegerType.get_signless(64), k),
                 "latency_ms": ir.FloatAttr.get(f64, m.latency_ms, loc=where),
                 "recall": ir.FloatAttr.get(f64, m.recall, loc=where), NAME: named("ann")}
        return ir.Operation.create("agent.ann_search", results=[op.results[0].type], operands=[op.operands[0]],
                                   attributes=attrs, loc=where).results[0]

    def _rerank(self, op, attrs, call, named, loc, module_body):
        """Pair tokenization on the host, then the cross-encoder over the k pairs at once
        (embeddings, a call per layer, score) and the order, on a device."""
        model, index = ir.StringAttr(attrs["model"]).value, ir.StringAttr(attrs["index"]).value
        query, indices = op.operands
        k = ir.RankedTensorType(indices.type).shape[1]
        ks = self._ensure(f"rerank:{model}:{k}", lambda: kernels.reranker_kernels(model, k), module_body)
        emb = ks[f"embeddings_k{k}"]
        ids_t, types_t = self._input_types(emb.symbol)
        tok = ir.Operation.create(
            "agent.pair_tokenize", results=[ids_t, types_t], operands=[query, indices],
            attributes={"model": ir.StringAttr.get(model), "index": ir.StringAttr.get(index), NAME: named("tokenize")},
            loc=loc("tokenize"))
        ids, types = tok.results
        x = call(emb, [ids, types], "embeddings").results[0]
        i = 0
        while f"block{i}_k{k}" in ks:
            x = call(ks[f"block{i}_k{k}"], [x, ids], f"block{i}").results[0]
            i += 1
        scores = call(ks[f"score_k{k}"], [x], "score").results[0]
        return call(ks[f"order_k{k}"], [scores, indices], "order").results[0]

    def _sampler(self, model, attrs, ks, call, named, loc, module_body):
        """(`sample(logits, i)`, `uniforms(i, count)`, the sampling settings or None):
        greedy, or with a temperature a draw on the device from a uniform number made on the
        host for step i (agent.uniform; `count` of them for a chunk of steps)."""
        if "temperature" not in attrs:
            return lambda logits, i: call(ks["sample"], [logits], f"sample{i}").results[0], None, None
        settings = (ir.FloatAttr(attrs["temperature"]).value, ir.IntegerAttr(attrs["top_k"]).value,
                    ir.FloatAttr(attrs["top_p"]).value)
        seed = attrs["seed"]
        (kernel,) = self._ensure("sampler:{}:{}:{}:{}".format(model, *settings),
                                 lambda: [kernels.sampler_kernel(model, *settings)], module_body).values()
        i64 = ir.IntegerType.get_signless(64)

        def uniforms(i, count=1):
            extra = {"count": ir.IntegerAttr.get(i64, count)} if count > 1 else {}
            return ir.Operation.create("agent.uniform", results=[ir.Type.parse(f"tensor<{count}xf32>")],
                                       attributes={"seed": seed, "step": ir.IntegerAttr.get(i64, i), **extra,
                                                   NAME: named(f"uniform{i}")}, loc=loc(f"uniform{i}")).results[0]

        def sample(logits, i):
            return call(kernel, [logits, uniforms(i)], f"sample{i}").results[0]

        return sample, uniforms, settings

    def _chunk(self, attrs, step: kernels.Kernel, steps: int) -> int:
        """Tokens per decode call: the llm's `decode_chunk`, else the pass's (a number, or
        the compiler's choice from the step's implementation and the decode steps), else 1."""
        if "decode_chunk" in attrs:
            return ir.IntegerAttr(attrs["decode_chunk"]).value
        if callable(self.decode_chunk):
            impls = {r: self._impls[kernels.variant_symbol(step.symbol, r)] for r in step.variants}
            return self.decode_chunk(steps, {None: self._impls[f"{step.symbol}_impl"], **impls})
        return self.decode_chunk or 1

    @staticmethod
    def _generate(ks, call, stop, sample, ids, length, steps, n=1, chunk=None):
        """Step granularity: prefill, then one decode call over all layers per token, or per
        chunk of n tokens (`chunk(m, i)`: the kernel of m steps from step i, and its extra
        operands), each after `stop` (end-of-turn) lets the previous token through. A chunk
        gives each of its tokens as a value of its own, as the steps do. The KV caches are
        whatever prefill returns after the logits (per layer, or stacked for the tiny
        models), threaded through every step."""
        logits, *caches = call(ks["prefill"], [ids, length], "prefill").results
        tokens = [sample(logits, 0)]
        pos, i = length, 1
        while i < steps:
            m = min(n, steps - i)
            if m == 1:
                logits, *caches, pos = call(ks["decode"], [stop(tokens, i), pos, *caches], f"decode{i}").results
                tokens.append(sample(logits, i))
            else:
                kernel, extra = chunk(m, i)
                results = call(kernel, [stop(tokens, i), pos, *caches, *extra], f"decode{i}x{m}").results
                tokens += results[:m]
                pos, caches = results[m], list(results[m + 1:])
            i += m
        return tokens

    @staticmethod
    def _generate_layered(ks, call, stop, sample, ids, length, steps):
        """Layer granularity: every layer of every step is its own operator, with that
        layer's KV cache as explicit operands and results, so layers and steps can be
        placed on different devices."""
        n_layers = 0
        while f"prefill_l{n_layers}" in ks:
            n_layers += 1
        # The embeddings also give what every layer takes besides the hidden state (`pe`:
        # rotary cos/sin, or nothing for learned positions).
        x, *pe = call(ks["embed_prefill"], [ids], "prefill/embed").results
        caches = []
        for j in range(n_layers):
            x, k, v = call(ks[f"prefill_l{j}"], [x, *pe], f"prefill/l{j}").results
            caches.append((k, v))
        logits = call(ks["head_prefill"], [x, length], "prefill/head").results[0]
        tokens = [sample(logits, 0)]
        pos = length
        for i in range(1, steps):
            x, *pe, nxt = call(ks["embed_decode"], [stop(tokens, i), pos], f"decode{i}/embed").results
            for j in range(n_layers):
                k, v = caches[j]
                x, k, v = call(ks[f"decode_l{j}"], [x, *pe, pos, k, v], f"decode{i}/l{j}").results
                caches[j] = (k, v)
            logits = call(ks["head_decode"], [x], f"decode{i}/head").results[0]
            tokens.append(sample(logits, i))
            pos = nxt
        return tokens

    def _result_types(self, symbol):
        return list(self._funcs[symbol].results)

    def _input_types(self, symbol):
        return list(self._funcs[symbol].inputs)

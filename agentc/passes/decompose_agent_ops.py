"""decompose-agent-ops: model-level agent ops -> granular operators.

  agent.embed          -> call @<enc>__encode, call @<enc>__pool (tiny), or, for layered
                          models, call @<enc>__embeddings, @<enc>__block<i> per layer, @<enc>__pool
  agent.vector_search  -> call @index_<name>__similarity, call @index_<name>__top<k>
  agent.llm            -> agent.tokenize (prompt ids + length), call @<lm>__prefill,
                          call @<lm>__sample, then per step agent.stop_at_eos of the last
                          token (later steps are skipped after end-of-turn), call
                          @<lm>__decode and call @<lm>__sample, and agent.detokenize of all
                          sampled tokens.
                          Layered models with granularity "layer" instead
                          get embed/prefill_l<i>.../head per prompt and embed/decode_l<i>
                          .../head per generated token, each layer's KV cache threaded
                          through its own operators; "step" keeps one call per step.

Each model's compute functions are added once (see agentc.kernels). Every op created keeps
the source location of the op it replaces, under a name `<node>/<operator>` so diagnostics,
plans and traces can name operators individually.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from torch_mlir import ir

from agentc import kernels
from agentc.dialects import MODEL_OPS
from agentc.emit import NAME, op_name, source_loc
from agentc.models import registry
from agentc.models.irpa import param_key


def _sym(name: str) -> str:
    return '@"' + name + '"'


@dataclass
class DecomposeAgentOps:
    """Options: `indexes` maps index names to VectorIndex objects (corpus embeddings are
    weights of the search kernels)."""

    indexes: dict = field(default_factory=dict)
    granularity: str = "layer"  # for llm ops that do not set one (the compiler's choice)
    # Runtimes of the build's devices: kernels carry their variants for these only
    # (None: for every runtime a model has a form for).
    runtimes: frozenset[str] | None = None
    NAME = "decompose-agent-ops"

    def __post_init__(self):
        self._added: dict[str, dict[str, kernels.Kernel]] = {}
        self.weights: dict[str, dict] = {}  # group -> {param: array}, for the build

    def __call__(self, op: ir.Operation, pass_=None) -> None:
        module_body = op.regions[0].blocks[0]
        # The module's symbols, kept up to date as kernels are added: looking one up by
        # walking the module for each of ~1,000 calls made the pass quadratic.
        self._funcs: dict[str, ir.FunctionType] = {}
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
        if k.symbol in self._funcs:
            return  # shared by two decompositions of one model (e.g. `sample`)
        impl_mod = ir.Module.parse(k.impl_text)  # only to read the signature
        impl = next(o for o in impl_mod.body.operations if o.operation.name == "func.func")
        ftype = ir.FunctionType(ir.TypeAttr(impl.attributes["function_type"]).value)
        n_w = len(k.params)
        w_types, a_types = ftype.inputs[:n_w], ftype.inputs[n_w:]
        lines, loads = [], []
        for (pname, _), t in zip(k.params.items(), w_types):
            g = param_key(k.group, pname)
            lines.append(f"ml_program.global private {_sym(g)}(#ml_program.extern : {t}) : {t}")
            loads.append((f"%w{len(loads)}", g, t))
        args = ", ".join(f"%a{i}: {t}" for i, t in enumerate(a_types))
        res = ", ".join(str(t) for t in ftype.results)
        body = [f"  {n} = ml_program.global_load_const {_sym(g)} : {t}" for n, g, t in loads]
        operands = [n for n, _, _ in loads] + [f"%a{i}" for i in range(len(a_types))]
        body.append(f"  %r:{len(ftype.results)} = func.call @{k.symbol}_impl({', '.join(operands)}) : "
                    f"({', '.join(str(t) for t in ftype.inputs)}) -> ({res})")
        body.append("  return " + ", ".join(f"%r#{i}" for i in range(len(ftype.results))) + f" : {res}")
        lines.append(f'func.func private @{k.symbol}({args}) -> ({res}) attributes '
                     f'{{agent.kernel, agent.weights = "{k.group}"}} {{\n' + "\n".join(body) + "\n}")
        # Parse wrapper and implementation together so the call's symbol resolves.
        text = k.impl_text.rstrip()
        combined = ir.Module.parse(text[: text.rindex("}")] + "\n".join(lines) + "\n}")
        for o in list(combined.body.operations):
            if o.operation.name == "ml_program.global" and \
                    ir.StringAttr(o.attributes["sym_name"]).value in self._globals:
                continue  # weights shared with a kernel already added
            if o.operation.name == "func.func" and ir.StringAttr(o.attributes["sym_name"]).value.endswith("_impl"):
                o.attributes["sym_visibility"] = ir.StringAttr.get("private")
            self._record(o)
            module_body.append(o.operation)
        # A runtime's own formulation sits beside the default as @<kernel>_impl__<runtime>;
        # outline-device-modules gives it to that runtime's devices.
        for runtime, variant in k.variants.items():
            renamed = kernels.rename_symbol(variant, f"{k.symbol}_impl",
                                            kernels.variant_symbol(k.symbol, runtime))
            parsed = ir.Module.parse(renamed)  # kept alive while its ops are moved out
            for o in list(parsed.body.operations):
                if o.operation.name == "func.func":
                    o.attributes["sym_visibility"] = ir.StringAttr.get("private")
                    self._record(o)
                    module_body.append(o.operation)

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
                ks = self._ensure(f"index:{name}:{k}", lambda: kernels.index_kernels(index, k), module_body)
                scores = call(ks["similarity"], [op.operands[0]], "similarity")
                out = call(ks[f"top{k}"], [scores.results[0]], f"top{k}").results[0]
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
                eos = registry.decoder(model).eos

                def stop(token, i):  # the next step runs only if `token` is not end-of-turn
                    return ir.Operation.create(
                        "agent.stop_at_eos", results=[token.type], operands=[token],
                        attributes={"eos": ir.IntegerAttr.get(ir.IntegerType.get_signless(64), eos),
                                    NAME: named(f"stop{i}")},
                        loc=loc(f"stop{i}")).results[0]

                tokens = self._generate_layered(ks, call, stop, ids, length, steps) if layered else \
                    self._generate(ks, call, stop, ids, length, steps)
                out = ir.Operation.create(
                    "agent.detokenize", results=[op.results[0].type], operands=tokens,
                    attributes={"model": ir.StringAttr.get(model), NAME: named("detokenize")},
                    loc=loc("detokenize")).results[0]
        op.results[0].replace_all_uses_with(out)
        op.erase()

    @staticmethod
    def _generate(ks, call, stop, ids, length, steps):
        """Step granularity: prefill, then per token one decode call over all layers, each
        after `stop` (end-of-turn) lets the previous token through."""
        logits, kc, vc = call(ks["prefill"], [ids, length], "prefill").results
        tokens = [call(ks["sample"], [logits], "sample0").results[0]]
        pos = length
        for i in range(1, steps):
            logits, kc, vc, pos = call(ks["decode"], [stop(tokens[-1], i), pos, kc, vc], f"decode{i}").results
            tokens.append(call(ks["sample"], [logits], f"sample{i}").results[0])
        return tokens

    @staticmethod
    def _generate_layered(ks, call, stop, ids, length, steps):
        """Layer granularity: every layer of every step is its own operator, with that
        layer's KV cache as explicit operands and results, so layers and steps can be
        placed on different devices."""
        n_layers = 0
        while f"prefill_l{n_layers}" in ks:
            n_layers += 1
        x, cos, sin = call(ks["embed_prefill"], [ids], "prefill/embed").results
        caches = []
        for j in range(n_layers):
            x, k, v = call(ks[f"prefill_l{j}"], [x, cos, sin], f"prefill/l{j}").results
            caches.append((k, v))
        logits = call(ks["head_prefill"], [x, length], "prefill/head").results[0]
        tokens = [call(ks["sample"], [logits], "sample0").results[0]]
        pos = length
        for i in range(1, steps):
            x, cos, sin, nxt = call(ks["embed_decode"], [stop(tokens[-1], i), pos], f"decode{i}/embed").results
            for j in range(n_layers):
                k, v = caches[j]
                x, k, v = call(ks[f"decode_l{j}"], [x, cos, sin, pos, k, v], f"decode{i}/l{j}").results
                caches[j] = (k, v)
            logits = call(ks["head_decode"], [x], f"decode{i}/head").results[0]
            tokens.append(call(ks["sample"], [logits], f"sample{i}").results[0])
            pos = nxt
        return tokens

    def _result_types(self, symbol):
        return list(self._funcs[symbol].results)

    def _input_types(self, symbol):
        return list(self._funcs[symbol].inputs)

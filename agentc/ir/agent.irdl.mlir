// The `agent` dialect: the source of truth for agent-level and operator-level IR.
//
// Agent level (what graph.py traces to): text values flow between tokenizers, models,
// vector search, prompt formatting, tools and branches.
// Operator level (after decompose-agent-ops): model calls become `func.call`s of
// linalg/tensor `func.func`s whose weights are `ml_program` globals; host work (tokenize, detokenize, tools, formatting, branch
// predicates) stays as host ops. Nothing in this dialect reaches IREE: partitioning keeps
// only the compute functions of each device.
//
// IRDL binds one constraint variable to one type or attribute per op: every operand,
// result and attribute that may differ has its own variable below.
//
// Branches reference outlined functions by symbol (as tf.If does) rather than owning
// regions: IRDL cannot mark an op as a terminator, so region bodies could not end.

irdl.dialect @agent {
  // A UTF-8 string value that lives on the host.
  irdl.type @text {}

  // ---- agent level ----------------------------------------------------------------

  // Prompt formatting and concatenation: `template` with {0}, {1}, ... placeholders.
  irdl.operation @format {
    %text = irdl.parametric @agent::@text<>
    %str = irdl.base "#builtin.string"
    irdl.operands(args: variadic %text)
    irdl.results(out: %text)
    irdl.attributes {"template" = %str}
  }

  // Reduce of a fan-out: the texts joined by `separator`.
  irdl.operation @join {
    %text = irdl.parametric @agent::@text<>
    %str = irdl.base "#builtin.string"
    irdl.operands(args: variadic %text)
    irdl.results(out: %text)
    irdl.attributes {"separator" = %str}
  }

  // Text -> token ids (right-padded) and, for causal models, the prompt length.
  irdl.operation @tokenize {
    %text = irdl.parametric @agent::@text<>
    %ids = irdl.base "!builtin.tensor"
    %length = irdl.base "!builtin.tensor"
    %str = irdl.base "#builtin.string"
    irdl.operands(text: %text)
    irdl.results(ids: %ids, length: optional %length)
    irdl.attributes {"model" = %str}
  }

  // Token ids -> sentence embedding.
  irdl.operation @embed {
    %ids = irdl.base "!builtin.tensor"
    %emb = irdl.base "!builtin.tensor"
    %str = irdl.base "#builtin.string"
    irdl.operands(ids: %ids)
    irdl.results(embedding: %emb)
    irdl.attributes {"model" = %str}
  }

  // Embedding -> indices of the k nearest passages of `index` (cosine similarity).
  irdl.operation @vector_search {
    %query = irdl.base "!builtin.tensor"
    %indices = irdl.base "!builtin.tensor"
    %str = irdl.base "#builtin.string"
    %int = irdl.base "#builtin.integer"
    irdl.operands(query: %query)
    irdl.results(indices: %indices)
    irdl.attributes {"index" = %str, "k" = %int}
  }

  // Passage indices -> the passages' text, joined by newlines.
  irdl.operation @passages {
    %tensor = irdl.base "!builtin.tensor"
    %text = irdl.parametric @agent::@text<>
    %str = irdl.base "#builtin.string"
    irdl.operands(indices: %tensor)
    irdl.results(out: %text)
    irdl.attributes {"index" = %str}
  }

  // (query, passage indices of `index`) -> the same indices ordered by a cross-encoder's
  // relevance scores, best first.
  irdl.operation @rerank {
    %text = irdl.parametric @agent::@text<>
    %tensor = irdl.base "!builtin.tensor"
    %model = irdl.base "#builtin.string"
    %index = irdl.base "#builtin.string"
    irdl.operands(query: %text, indices: %tensor)
    irdl.results(out: %tensor)
    irdl.attributes {"model" = %model, "index" = %index}
  }

  // A PyTorch module (agentc.module) on up to four tensors, giving up to four: its
  // weights are its parameters and buffers. Each operand and result has its own constraint
  // variable (a variadic would force them all to one type), so the optional ones carry
  // operandSegmentSizes / resultSegmentSizes.
  irdl.operation @module {
    %i0 = irdl.base "!builtin.tensor"
    %i1 = irdl.base "!builtin.tensor"
    %i2 = irdl.base "!builtin.tensor"
    %i3 = irdl.base "!builtin.tensor"
    %o0 = irdl.base "!builtin.tensor"
    %o1 = irdl.base "!builtin.tensor"
    %o2 = irdl.base "!builtin.tensor"
    %o3 = irdl.base "!builtin.tensor"
    %str = irdl.base "#builtin.string"
    irdl.operands(in0: %i0, in1: optional %i1, in2: optional %i2, in3: optional %i3)
    irdl.results(out0: %o0, out1: optional %o1, out2: optional %o2, out3: optional %o3)
    irdl.attributes {"callee" = %str}
  }

  // Prompt -> generated text (greedy, at most max_tokens tokens).
  irdl.operation @llm {
    %text = irdl.parametric @agent::@text<>
    %str = irdl.base "#builtin.string"
    %int = irdl.base "#builtin.integer"
    irdl.operands(prompt: %text)
    irdl.results(out: %text)
    irdl.attributes {"model" = %str, "max_tokens" = %int}
  }

  // A Python callable run on the host with a declared latency and a timeout.
  irdl.operation @tool {
    %text = irdl.parametric @agent::@text<>
    %str = irdl.base "#builtin.string"
    %latency = irdl.base "#builtin.integer"
    %timeout = irdl.base "#builtin.integer"
    irdl.operands(args: variadic %text)
    irdl.results(out: %text)
    irdl.attributes {"callee" = %str, "latency_ms" = %latency, "timeout_ms" = %timeout}
  }

  // Does the text match the regular expression `pattern`?
  irdl.operation @contains {
    %text = irdl.parametric @agent::@text<>
    %i1 = irdl.is i1
    %str = irdl.base "#builtin.string"
    irdl.operands(text: %text)
    irdl.results(out: %i1)
    irdl.attributes {"pattern" = %str}
  }

  // A bounded data-dependent branch: calls @then_branch or @else_branch with `args`.
  // Branch arguments and results are text (IRDL unifies a variadic's element types).
  irdl.operation @if {
    %i1 = irdl.is i1
    %text = irdl.parametric @agent::@text<>
    %then = irdl.base "#builtin.symbol_ref"
    %else = irdl.base "#builtin.symbol_ref"
    irdl.operands(pred: %i1, args: variadic %text)
    irdl.results(out: %text)
    irdl.attributes {"then_branch" = %then, "else_branch" = %else}
  }

  // ---- operator level --------------------------------------------------------------

  // End-of-turn for greedy decoding: passes a sampled token on to the next decode step
  // unless it is `eos`. A stopped token is skipped, and so is every operator that depends
  // on it (the later decode steps); detokenize ends at the first skipped token.
  irdl.operation @stop_at_eos {
    %tensor = irdl.base "!builtin.tensor"
    %int = irdl.base "#builtin.integer"
    irdl.operands(token: %tensor)
    irdl.results(out: %tensor)
    irdl.attributes {"eos" = %int}
  }

  // (query, passage indices of `index`) -> token ids and token types (k, L) of the
  // (query, passage) pairs, for a cross-encoder.
  irdl.operation @pair_tokenize {
    %text = irdl.parametric @agent::@text<>
    %indices = irdl.base "!builtin.tensor"
    %ids = irdl.base "!builtin.tensor"
    %model = irdl.base "#builtin.string"
    %index = irdl.base "#builtin.string"
    irdl.operands(query: %text, indices: %indices)
    irdl.results(ids: %ids, types: %ids)
    irdl.attributes {"model" = %model, "index" = %index}
  }

  // Stop strings: like stop_at_eos, but also stops once the text of `tokens` (all sampled
  // so far) contains one of `stop`.
  irdl.operation @stop_at_text {
    %tensor = irdl.base "!builtin.tensor"
    %int = irdl.base "#builtin.integer"
    %str = irdl.base "#builtin.string"
    %array = irdl.base "#builtin.array"
    irdl.operands(tokens: variadic %tensor)
    irdl.results(out: %tensor)
    irdl.attributes {"eos" = %int, "model" = %str, "stop" = %array}
  }

  // A uniform draw in [0, 1) for sampling step `step`: from `seed` (reproducible), or
  // fresh for each request when seed is -1.
  irdl.operation @uniform {
    %tensor = irdl.base "!builtin.tensor"
    %seed = irdl.base "#builtin.integer"
    %step = irdl.base "#builtin.integer"
    irdl.results(u: %tensor)
    irdl.attributes {"seed" = %seed, "step" = %step}
  }

  // Embedding -> indices (1, k) of the k passages a FAISS index on the host finds
  // (approximate search); `latency_ms` and `recall` were measured at compile time.
  irdl.operation @ann_search {
    %query = irdl.base "!builtin.tensor"
    %indices = irdl.base "!builtin.tensor"
    %str = irdl.base "#builtin.string"
    %int = irdl.base "#builtin.integer"
    %latency = irdl.base "#builtin.float"
    %recall = irdl.base "#builtin.float"
    irdl.operands(query: %query)
    irdl.results(indices: %indices)
    irdl.attributes {"index" = %str, "k" = %int, "latency_ms" = %latency, "recall" = %recall}
  }

  // Generated token ids -> text, stopping at end-of-sequence.
  irdl.operation @detokenize {
    %tensor = irdl.base "!builtin.tensor"
    %text = irdl.parametric @agent::@text<>
    %str = irdl.base "#builtin.string"
    irdl.operands(tokens: variadic %tensor)
    irdl.results(out: %text)
    irdl.attributes {"model" = %str}
  }
}

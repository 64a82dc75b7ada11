// decompose-agent-ops: an LLM call becomes tokenize, prefill, sample, then per step an
// end-of-turn check, decode and sample, and detokenize; every operator is named
// <node>/<operator> and keeps its node's location.
// RUN: agentc-opt %s --pass-pipeline='builtin.module(decompose-agent-ops)' --mlir-print-debuginfo | filecheck %s

// CHECK-LABEL: func.func @a
// CHECK: "agent.tokenize"(%arg0) {agent.name = "answer/tokenize", model = "tiny-lm"} : (!agent.text) -> (tensor<1x160xi32>, tensor<1xi32>)
// CHECK: call @tiny_lm__prefill({{.*}}) {agent.name = "answer/prefill"}
// CHECK: call @tiny_lm__sample({{.*}}) {agent.name = "answer/sample0"}
// CHECK: "agent.stop_at_eos"({{.*}}) {agent.name = "answer/stop1", eos = 258 : i64}
// CHECK: call @tiny_lm__decode({{.*}}) {agent.name = "answer/decode1"}
// CHECK: call @tiny_lm__sample({{.*}}) {agent.name = "answer/sample1"}
// CHECK: "agent.stop_at_eos"({{.*}}) {agent.name = "answer/stop2", eos = 258 : i64}
// CHECK: call @tiny_lm__decode({{.*}}) {agent.name = "answer/decode2"}
// CHECK: call @tiny_lm__sample({{.*}}) {agent.name = "answer/sample2"}
// CHECK-NOT: agent.llm
// CHECK: "agent.detokenize"({{.*}}) {agent.name = "answer/detokenize", model = "tiny-lm"}
// CHECK-DAG: #[[FILE:.*]] = loc("graph.py":7:0)
// CHECK-DAG: loc("answer/prefill"(#[[FILE]]))
module {
  func.func @a(%q: !agent.text) -> !agent.text {
    %0 = "agent.llm"(%q) {agent.name = "answer", model = "tiny-lm", max_tokens = 3 : i64} : (!agent.text) -> !agent.text loc("answer"("graph.py":7:0))
    return %0 : !agent.text
  }
}

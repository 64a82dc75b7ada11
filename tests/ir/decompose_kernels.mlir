// decompose-agent-ops adds each model's kernels once: the implementation
// (<kernel>_impl, private), its weights as ml_program globals and a wrapper that loads
// them (agent.kernel, agent.weights = <group>); two calls of one model share them.
// RUN: agentc-opt %s --pass-pipeline='builtin.module(decompose-agent-ops)' | filecheck %s

// CHECK-COUNT-2: call @tiny_lm__prefill(
// CHECK: func.func private @tiny_lm__prefill_impl(
// CHECK: ml_program.global private @"tiny-lm/tok_emb"(#extern) : tensor<259x64xf32>
// CHECK: func.func private @tiny_lm__prefill({{.*}}attributes {agent.kernel, agent.weights = "tiny-lm"}
// CHECK-NEXT: ml_program.global_load_const @"tiny-lm/tok_emb" : tensor<259x64xf32>
// CHECK: call @tiny_lm__prefill_impl(
// CHECK-NOT: func.func private @tiny_lm__prefill_impl(
// CHECK-NOT: ml_program.global private @"tiny-lm/tok_emb"
module {
  func.func @a(%q: !agent.text) -> (!agent.text, !agent.text) {
    %0 = "agent.llm"(%q) {agent.name = "first", model = "tiny-lm", max_tokens = 1 : i64} : (!agent.text) -> !agent.text
    %1 = "agent.llm"(%0) {agent.name = "second", model = "tiny-lm", max_tokens = 1 : i64} : (!agent.text) -> !agent.text
    return %0, %1 : !agent.text, !agent.text
  }
}

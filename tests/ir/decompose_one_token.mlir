// An LLM call of one token has no decode step and no end-of-turn check.
// RUN: agentc-opt %s --pass-pipeline='builtin.module(decompose-agent-ops)' | filecheck %s

// CHECK: call @tiny_lm__prefill({{.*}}) {agent.name = "once/prefill"}
// CHECK-NEXT: call @tiny_lm__sample({{.*}}) {agent.name = "once/sample0"}
// CHECK-NOT: stop_at_eos
// CHECK-NOT: call @tiny_lm__decode(
// CHECK: "agent.detokenize"
module {
  func.func @a(%q: !agent.text) -> !agent.text {
    %0 = "agent.llm"(%q) {agent.name = "once", model = "tiny-lm", max_tokens = 1 : i64} : (!agent.text) -> !agent.text
    return %0 : !agent.text
  }
}

// Host operators (formatting, tools, predicates, branches) are not model ops: they pass
// through decompose-agent-ops unchanged.
// RUN: agentc-opt %s --pass-pipeline='builtin.module(decompose-agent-ops)' | filecheck %s

// CHECK: "agent.format"(%arg0) {agent.name = "p", template = "Q: {0}"}
// CHECK-NEXT: "agent.contains"(%arg0) {agent.name = "c", pattern = "x"}
// CHECK-NEXT: "agent.tool"({{.*}}) {agent.name = "t", callee = "t", latency_ms = 1 : i64, timeout_ms = 9 : i64}
// CHECK-NEXT: "agent.join"
module {
  func.func @a(%q: !agent.text) -> !agent.text {
    %p = "agent.format"(%q) {agent.name = "p", template = "Q: {0}"} : (!agent.text) -> !agent.text
    %c = "agent.contains"(%q) {agent.name = "c", pattern = "x"} : (!agent.text) -> i1
    %t = "agent.tool"(%p) {agent.name = "t", callee = "t", latency_ms = 1 : i64, timeout_ms = 9 : i64} : (!agent.text) -> !agent.text
    %j = "agent.join"(%p, %t) {agent.name = "j", separator = ";"} : (!agent.text, !agent.text) -> !agent.text
    return %j : !agent.text
  }
}

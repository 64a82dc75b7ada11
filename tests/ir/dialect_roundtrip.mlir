// The agent dialect prints and parses back unchanged (generic op form, IRDL-defined).
// RUN: agentc-opt %s | filecheck %s

// CHECK-LABEL: func.func @rag(%arg0: !agent.text) -> !agent.text
// CHECK: "agent.tokenize"(%arg0) {agent.name = "q_ids", model = "tiny-encoder"} : (!agent.text) -> tensor<1x32xi32>
// CHECK: "agent.embed"({{.*}}) {agent.name = "q_vec", model = "tiny-encoder"} : (tensor<1x32xi32>) -> tensor<1x64xf32>
// CHECK: "agent.vector_search"({{.*}}) {agent.name = "hits", index = "facts", k = 3 : i64}
// CHECK: "agent.contains"(%arg0) {agent.name = "math", pattern = "\\d"} : (!agent.text) -> i1
// CHECK: "agent.if"({{.*}}) {agent.name = "maybe", else_branch = @no, then_branch = @yes}
// CHECK: "agent.llm"({{.*}}) {agent.name = "answer", max_tokens = 4 : i64, model = "tiny-lm"}
// CHECK: func.func private @yes
// CHECK: "agent.tool"(%arg0) {agent.name = "calc", callee = "calc", latency_ms = 1 : i64, timeout_ms = 500 : i64}
module {
  func.func @rag(%q: !agent.text) -> !agent.text {
    %ids = "agent.tokenize"(%q) {agent.name = "q_ids", model = "tiny-encoder"} : (!agent.text) -> tensor<1x32xi32>
    %vec = "agent.embed"(%ids) {agent.name = "q_vec", model = "tiny-encoder"} : (tensor<1x32xi32>) -> tensor<1x64xf32>
    %hits = "agent.vector_search"(%vec) {agent.name = "hits", index = "facts", k = 3 : i64} : (tensor<1x64xf32>) -> tensor<1x3xi32>
    %ctx = "agent.passages"(%hits) {agent.name = "ctx", index = "facts"} : (tensor<1x3xi32>) -> !agent.text
    %m = "agent.contains"(%q) {agent.name = "math", pattern = "\\d"} : (!agent.text) -> i1
    %note = "agent.if"(%m, %q) {agent.name = "maybe", then_branch = @yes, else_branch = @no} : (i1, !agent.text) -> !agent.text
    %p = "agent.format"(%ctx, %note, %q) {agent.name = "prompt", template = "{0} {1} {2}"} : (!agent.text, !agent.text, !agent.text) -> !agent.text
    %a = "agent.llm"(%p) {agent.name = "answer", model = "tiny-lm", max_tokens = 4 : i64} : (!agent.text) -> !agent.text
    return %a : !agent.text
  }
  func.func private @yes(%q: !agent.text) -> !agent.text {
    %r = "agent.tool"(%q) {agent.name = "calc", callee = "calc", latency_ms = 1 : i64, timeout_ms = 500 : i64} : (!agent.text) -> !agent.text
    return %r : !agent.text
  }
  func.func private @no(%q: !agent.text) -> !agent.text {
    %r = "agent.format"() {agent.name = "none", template = "none"} : () -> !agent.text
    return %r : !agent.text
  }
}

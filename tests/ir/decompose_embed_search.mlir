// An embedding becomes encode and pool; a vector search over an index becomes a
// similarity against the corpus embeddings (the index's weights) and a top-k.
// RUN: agentc-opt %s --pass-pipeline='builtin.module(decompose-agent-ops{index=facts:examples/corpus.txt})' | filecheck %s

// CHECK: call @tiny_encoder__encode(%{{.*}}) {agent.name = "vec/encode"} : (tensor<1x32xi32>) -> tensor<1x32x64xf32>
// CHECK: call @tiny_encoder__pool({{.*}}) {agent.name = "vec/pool"} : (tensor<1x32x64xf32>, tensor<1x32xi32>) -> tensor<1x64xf32>
// CHECK: call @index_facts__similarity({{.*}}) {agent.name = "hits/similarity"} : (tensor<1x64xf32>) -> tensor<1x40xf32>
// CHECK: call @index_facts__top2({{.*}}) {agent.name = "hits/top2"} : (tensor<1x40xf32>) -> tensor<1x2xi32>
// CHECK: ml_program.global private @"index:facts/embeddings"(#extern{{[0-9]*}}) : tensor<40x64xf32>
// CHECK: func.func private @index_facts__similarity({{.*}} attributes {agent.kernel, agent.weights = "index:facts"}
// CHECK: func.func private @index_facts__top2({{.*}} attributes {agent.kernel, agent.weights = "index:facts"}
module {
  func.func @a(%q: !agent.text) -> tensor<1x2xi32> {
    %ids = "agent.tokenize"(%q) {agent.name = "ids", model = "tiny-encoder"} : (!agent.text) -> tensor<1x32xi32>
    %v = "agent.embed"(%ids) {agent.name = "vec", model = "tiny-encoder"} : (tensor<1x32xi32>) -> tensor<1x64xf32>
    %h = "agent.vector_search"(%v) {agent.name = "hits", index = "facts", k = 2 : i64} : (tensor<1x64xf32>) -> tensor<1x2xi32>
    return %h : tensor<1x2xi32>
  }
}

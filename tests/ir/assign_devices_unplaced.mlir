// An operator no rule places is an error at that operator.
// RUN: agentc-opt %s --verify-diagnostics --pass-pipeline='builtin.module(assign-devices{devices=enc/*:cpu})'
module {
  func.func @a(%x: tensor<2xf32>) -> tensor<2xf32> {
    %e = func.call @k(%x) {agent.name = "enc/encode"} : (tensor<2xf32>) -> tensor<2xf32>
    // expected-error @below {{operator 'lm/prefill' has no placement}}
    %p = func.call @k(%e) {agent.name = "lm/prefill"} : (tensor<2xf32>) -> tensor<2xf32>
    return %p : tensor<2xf32>
  }
  func.func private @k(%x: tensor<2xf32>) -> tensor<2xf32> attributes {agent.kernel, agent.weights = "none"} {
    return %x : tensor<2xf32>
  }
}

// outline-device-modules reads the placement from the IR: a call without agent.device is
// an error (assign-devices runs first).
// RUN: not agentc-opt %s --pass-pipeline='builtin.module(outline-device-modules)' 2>&1 | filecheck %s
// CHECK: error: operator 'op' has no agent.device (run assign-devices first)
module {
  func.func @a(%x: tensor<2xf32>) -> tensor<2xf32> {
    %r = func.call @k(%x) {agent.name = "op"} : (tensor<2xf32>) -> tensor<2xf32>
    return %r : tensor<2xf32>
  }
  func.func private @k(%x: tensor<2xf32>) -> tensor<2xf32> attributes {agent.kernel, agent.weights = "none"} {
    return %x : tensor<2xf32>
  }
}

// A kernel written again for one runtime (@k_impl__cuda) reaches only the devices of that
// runtime, under the default implementation's name; other devices keep the default, and
// each device module holds only the kernels placed on it.
// RUN: agentc-opt %s --device-modules --pass-pipeline='builtin.module(outline-device-modules{runtimes=gpu0:cuda,cpu:cpu})' | filecheck %s

// CHECK: // -----// device module: cpu //----- //
// CHECK-NOT: arith.mulf
// CHECK: func.func private @k_impl(
// CHECK-NEXT: arith.constant dense<1.000000e+00>
// CHECK-NOT: k_impl__cuda
// CHECK: // -----// device module: gpu0 //----- //
// CHECK: func.func @k(
// CHECK: func.func private @k_impl(
// CHECK-NEXT: arith.constant dense<2.000000e+00>
// CHECK-NEXT: arith.mulf
// CHECK-NOT: k_impl__cuda
// CHECK-NOT: arith.addf
module {
  func.func private @k_impl(%a: tensor<4xf32>) -> tensor<4xf32> {
    %c = arith.constant dense<1.0> : tensor<4xf32>
    %r = arith.addf %a, %c : tensor<4xf32>
    return %r : tensor<4xf32>
  }
  func.func private @k_impl__cuda(%a: tensor<4xf32>) -> tensor<4xf32> {
    %c = arith.constant dense<2.0> : tensor<4xf32>
    %r = arith.mulf %a, %c : tensor<4xf32>
    return %r : tensor<4xf32>
  }
  func.func private @k(%a: tensor<4xf32>) -> tensor<4xf32> attributes {agent.kernel, agent.weights = "none"} {
    %r = func.call @k_impl(%a) : (tensor<4xf32>) -> tensor<4xf32>
    return %r : tensor<4xf32>
  }
  func.func @agent(%x: tensor<4xf32>) -> (tensor<4xf32>, tensor<4xf32>) {
    %a = func.call @k(%x) {agent.name = "on_gpu", agent.device = "gpu0"} : (tensor<4xf32>) -> tensor<4xf32>
    %b = func.call @k(%x) {agent.name = "on_cpu", agent.device = "cpu"} : (tensor<4xf32>) -> tensor<4xf32>
    return %a, %b : tensor<4xf32>, tensor<4xf32>
  }
}

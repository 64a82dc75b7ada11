// outline-device-modules: each device gets an IREE input module holding the kernels placed
// on it; a kernel's weights become util.globals bound to parameters of scope "agentc"
// (named like the ml_program globals its wrapper loads), and the wrapper loads them and
// calls the implementation. The operator module itself is unchanged.
// RUN: agentc-opt %s --device-modules --pass-pipeline='builtin.module(outline-device-modules)' | filecheck %s

// CHECK-LABEL: func.func @a
// CHECK: // -----// device module: cpu //----- //
// CHECK: util.global private @"m/w" = #flow.parameter.named<"agentc"::"m/w"> : tensor<2xf32>
// CHECK: func.func @k(%[[X:.*]]: tensor<2xf32>) -> tensor<2xf32> {
// CHECK-NEXT: %[[W:.*]] = util.global.load @"m/w" : tensor<2xf32>
// CHECK-NEXT: %[[R:.*]] = call @k_impl(%[[W]], %[[X]])
// CHECK-NEXT: return %[[R]]
// CHECK: func.func private @k_impl(%{{.*}}: tensor<2xf32>, %{{.*}}: tensor<2xf32>) -> tensor<2xf32>
// CHECK: arith.addf
// CHECK-NOT: ml_program
module {
  func.func @a(%x: tensor<2xf32>) -> tensor<2xf32> {
    %r = func.call @k(%x) {agent.name = "op", agent.device = "cpu"} : (tensor<2xf32>) -> tensor<2xf32>
    return %r : tensor<2xf32>
  }
  func.func private @k_impl(%w: tensor<2xf32>, %x: tensor<2xf32>) -> tensor<2xf32> {
    %r = arith.addf %w, %x : tensor<2xf32>
    return %r : tensor<2xf32>
  }
  ml_program.global private @"m/w"(#ml_program.extern : tensor<2xf32>) : tensor<2xf32>
  func.func private @k(%x: tensor<2xf32>) -> tensor<2xf32> attributes {agent.kernel, agent.weights = "m"} {
    %w = ml_program.global_load_const @"m/w" : tensor<2xf32>
    %r = func.call @k_impl(%w, %x) : (tensor<2xf32>, tensor<2xf32>) -> tensor<2xf32>
    return %r : tensor<2xf32>
  }
}

// assign-devices writes the placement into the IR: the first rule whose pattern matches
// an operator's name gives its device; host operators go to the host; every operator
// gets a start and end (0 for rules: no schedule).
// RUN: agentc-opt %s --pass-pipeline='builtin.module(assign-devices{devices=enc/*:vulkan,*:cpu})' | filecheck %s

// CHECK: "agent.tokenize"(%arg0) {agent.device = "host", agent.end = 0.000000e+00 : f64, agent.name = "ids", agent.start = 0.000000e+00 : f64
// CHECK: call @k(%{{.*}}) {agent.device = "vulkan", {{.*}}agent.name = "enc/encode"
// CHECK: call @k(%{{.*}}) {agent.device = "cpu", {{.*}}agent.name = "lm/prefill"
// CHECK: func.func private @k({{.*}}) -> tensor<1x32xi32> attributes {agent.kernel
// CHECK-NOT: agent.device
module {
  func.func @a(%q: !agent.text) -> tensor<1x32xi32> {
    %ids = "agent.tokenize"(%q) {agent.name = "ids", model = "tiny-encoder"} : (!agent.text) -> tensor<1x32xi32>
    %e = func.call @k(%ids) {agent.name = "enc/encode"} : (tensor<1x32xi32>) -> tensor<1x32xi32>
    %p = func.call @k(%e) {agent.name = "lm/prefill"} : (tensor<1x32xi32>) -> tensor<1x32xi32>
    return %p : tensor<1x32xi32>
  }
  func.func private @k(%x: tensor<1x32xi32>) -> tensor<1x32xi32> attributes {agent.kernel, agent.weights = "none"} {
    return %x : tensor<1x32xi32>
  }
}

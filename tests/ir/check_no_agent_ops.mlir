// check-no-agent-ops: a module bound for IREE must hold no agent op (iree-compile would
// crash on it without a message); a clean module passes unchanged.
// RUN: agentc-opt %s --split-input-file --verify-diagnostics --pass-pipeline='builtin.module(check-no-agent-ops{device=cpu})'
// RUN: not agentc-opt %s --split-input-file --pass-pipeline='builtin.module(check-no-agent-ops{device=cpu})' 2>/dev/null | filecheck %s
// CHECK: func.func @clean
module {
  func.func @clean(%x: tensor<2xf32>) -> tensor<2xf32> {
    return %x : tensor<2xf32>
  }
}

// -----

module {
  func.func @k(%q: !agent.text) -> !agent.text {
    // expected-error @below {{would reach IREE in the cpu module}}
    %0 = "agent.format"(%q) {template = "{0}"} : (!agent.text) -> !agent.text
    return %0 : !agent.text
  }
}

// A pipeline mixes agentc's passes with upstream ones (handed to MLIR's PassManager):
// here cse folds the repeated constant after decompose-agent-ops; and
// --print-ir-after-all dumps the IR after each of them.
// RUN: agentc-opt %s --pass-pipeline='builtin.module(decompose-agent-ops,cse)' | filecheck %s
// RUN: agentc-opt %s --print-ir-after-all --pass-pipeline='builtin.module(decompose-agent-ops,cse)' 2>&1 >/dev/null | filecheck %s --check-prefix=DUMP
// CHECK: arith.constant true
// CHECK-NOT: arith.constant
// CHECK: "agent.format"
// DUMP: // -----// IR Dump After decompose-agent-ops //----- //
// DUMP: // -----// IR Dump After cse //----- //
module {
  func.func @a(%q: !agent.text) -> (i1, i1) {
    %0 = arith.constant true
    %1 = arith.constant true
    %p = "agent.format"(%q) {agent.name = "p", template = "{0}"} : (!agent.text) -> !agent.text
    return %0, %1 : i1, i1
  }
}

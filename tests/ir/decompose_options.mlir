// Bad options of a pass are an error naming the pass and the option.
// RUN: not agentc-opt %s --pass-pipeline='builtin.module(decompose-agent-ops{granularity=token})' 2>&1 | filecheck %s
// CHECK: agentc-opt: error: --pass-pipeline: decompose-agent-ops: granularity: expected layer or step, got 'token'
module {
}

// A pipeline naming neither an agentc pass nor an upstream one fails with MLIR's message.
// RUN: not agentc-opt %s --pass-pipeline='builtin.module(frobnicate-everything)' 2>&1 | filecheck %s
// CHECK: frobnicate-everything
module {
}

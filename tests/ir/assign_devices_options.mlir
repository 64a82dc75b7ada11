// A rule must be PATTERN:DEVICE, and the pass has no other option.
// RUN: not agentc-opt %s --pass-pipeline='builtin.module(assign-devices{devices=cpu})' 2>&1 | filecheck %s --check-prefix=RULE
// RUN: not agentc-opt %s --pass-pipeline='builtin.module(assign-devices{device=cpu})' 2>&1 | filecheck %s --check-prefix=NAME
// RULE: assign-devices: devices: expected PATTERN:DEVICE, got 'cpu'
// NAME: assign-devices: unknown option 'device' (known: devices)
module {
}

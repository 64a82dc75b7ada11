// The IRDL verifier rejects ill-formed agent ops, at the op.
// RUN: agentc-opt %s --split-input-file --verify-diagnostics

func.func @f(%q: !agent.text) -> !agent.text {
  // expected-error @below {{attribute "max_tokens" is expected but not provided}}
  %0 = "agent.llm"(%q) {model = "tiny-lm"} : (!agent.text) -> !agent.text
  return %0 : !agent.text
}

// -----

func.func @f(%t: tensor<1x3xi32>) -> !agent.text {
  // expected-error @below {{expected base type 'agent.text' but got 'tensor<1x3xi32>'}}
  %0 = "agent.llm"(%t) {model = "tiny-lm", max_tokens = 2 : i64} : (tensor<1x3xi32>) -> !agent.text
  return %0 : !agent.text
}

// -----

func.func @f(%q: !agent.text) -> i1 {
  // expected-error @below {{expected '!agent.text' but got 'i1'}}
  %0 = "agent.format"(%q) {template = "{0}"} : (!agent.text) -> i1
  return %0 : i1
}

// -----

func.func @f(%q: !agent.text) -> tensor<1x32xi32> {
  // expected-error @below {{attribute "model" is expected but not provided}}
  %0 = "agent.tokenize"(%q) : (!agent.text) -> tensor<1x32xi32>
  return %0 : tensor<1x32xi32>
}

// -----

func.func @f(%v: tensor<1x64xf32>) -> tensor<1x3xi32> {
  // expected-error @below {{expected base attribute 'builtin.integer' but got 'builtin.string'}}
  %0 = "agent.vector_search"(%v) {index = "facts", k = "3"} : (tensor<1x64xf32>) -> tensor<1x3xi32>
  return %0 : tensor<1x3xi32>
}

// -----

func.func @f(%p: i32, %q: !agent.text) -> !agent.text {
  // expected-error @below {{expected 'i1' but got 'i32'}}
  %0 = "agent.if"(%p, %q) {then_branch = @a, else_branch = @a} : (i32, !agent.text) -> !agent.text
  return %0 : !agent.text
}

// -----

func.func @f(%q: !agent.text) -> !agent.text {
  // expected-error @below {{attribute "callee" is expected but not provided}}
  %0 = "agent.tool"(%q) {latency_ms = 1 : i64, timeout_ms = 2 : i64} : (!agent.text) -> !agent.text
  return %0 : !agent.text
}

// -----

func.func @f(%q: !agent.text) -> !agent.text {
  // expected-error @below {{expected 'i1' but got 'i32'}}
  %0 = "agent.contains"(%q) {pattern = "x"} : (!agent.text) -> i32
  return %q : !agent.text
}

// -----

func.func @f(%q: !agent.text) -> !agent.text {
  // expected-error @below {{expected base type 'builtin.tensor' but got 'agent.text'}}
  %0 = "agent.detokenize"(%q) {model = "tiny-lm"} : (!agent.text) -> !agent.text
  return %0 : !agent.text
}

// -----

func.func @f(%t: tensor<1xi32>) -> tensor<1xi32> {
  // expected-error @below {{attribute "eos" is expected but not provided}}
  %0 = "agent.stop_at_eos"(%t) : (tensor<1xi32>) -> tensor<1xi32>
  return %0 : tensor<1xi32>
}

// -----

func.func @f(%q: !agent.text) -> !agent.text {
  // expected-error @below {{unregistered operation 'agent.frobnicate' found in dialect ('agent')}}
  %0 = "agent.frobnicate"(%q) : (!agent.text) -> !agent.text
  return %0 : !agent.text
}

// -----

func.func @f(%q: !agent.text, %t: tensor<2xf32>) -> !agent.text {
  // expected-error @below {{expected '!agent.text' but got 'tensor<2xf32>'}}
  %0 = "agent.join"(%q, %t) {separator = ","} : (!agent.text, tensor<2xf32>) -> !agent.text
  return %0 : !agent.text
}

"""Hand-written CPU kernels that IREE links into its dispatches (`hal.import.static`
functions in an object file named by `hal.executable.objects`): matrix-vector products over
GGUF's quantized blocks, which IREE 3.13's own code generation streams no faster than
float32 on x86 (experiments/quantized-weights, experiments/cpu-ukernel)."""

"""The host CPU through IREE's llvm-cpu target and multithreaded local-task driver."""

from agentc.devices.base import DeviceKind

KIND = DeviceKind("cpu", driver="local-task", target="llvm-cpu",
                  compile_flags=("--iree-llvmcpu-target-cpu=host",))

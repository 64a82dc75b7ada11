"""NVIDIA GPUs through IREE's cuda target. sm_80 PTX: IREE 3.13 has no sm_90 target, and
the sm_80 code runs on Hopper."""

from agentc.devices.base import DeviceKind

KIND = DeviceKind("cuda", driver="cuda", target="cuda", compile_flags=("--iree-cuda-target=sm_80",),
                  staged_readback=True)

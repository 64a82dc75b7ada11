"""A Vulkan device through IREE's vulkan-spirv target (Mesa lavapipe on CPU-only hosts).

Results are read back through a host-visible staging buffer: lavapipe cannot import
unaligned host pointers, so DeviceArray.to_host() fails there."""

from agentc.devices.base import DeviceKind

KIND = DeviceKind("vulkan", driver="vulkan", target="vulkan-spirv", staged_readback=True)

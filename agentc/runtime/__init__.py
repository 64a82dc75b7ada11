"""Execution: load each device's module on its HAL device, run a plan's operators as their
inputs become ready, move tensors between devices, and record a timeline."""

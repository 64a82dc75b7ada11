"""A host array reaches a device with its shape: a 0-d array (a scalar weight, as Gemma's
embedding normalizer) stays 0-d, which a module's `tensor<f32>` argument requires."""

import numpy as np

MODULE = """
func.func @twice(%x: tensor<f32>) -> tensor<f32> {
  %y = arith.addf %x, %x : tensor<f32>
  return %y : tensor<f32>
}
"""


def test_a_0d_array_is_uploaded_as_0d():
    from agentc.bench.timing import Device
    from agentc.build.iree_compile import compile_module
    from agentc.devices import KINDS

    kind = KINDS["cpu"]
    dev = Device(kind.driver, kind.staged_readback)
    try:
        fn = dev.load(compile_module(MODULE, kind.target, kind.compile_flags, "cpu")[0], "twice")
        x = np.array(1.25, np.float32)
        up = kind.upload(dev.device, x)
        assert tuple(up.shape) == ()
        out = dev.readback(fn(up))
        assert out.shape == () and out == 2 * x
        strided = np.arange(12, dtype=np.float32).reshape(3, 4)[:, ::2]  # still made contiguous
        assert np.array_equal(dev.readback(kind.upload(dev.device, strided)), strided)
    finally:
        dev.close()

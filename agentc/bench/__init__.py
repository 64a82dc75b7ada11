"""`agentc bench`: measure kernels with IREE on a device and calibrate the cost model.

Kept import-free so the artifact runner (run_artifacts.py) loads on machines with only
numpy and iree.runtime."""

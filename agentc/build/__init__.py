"""Build stage: a placed agent -> a build directory (write.py), its IREE modules
(iree_compile.py), weight archives (weights.py) and recorded tools (tools.py)."""

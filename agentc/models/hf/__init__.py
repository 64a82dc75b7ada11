"""Models from Hugging Face directories, imported through their own PyTorch modules.

`checkpoint` reads a directory (config, memory-mapped safetensors, tokenizer files);
`families` says how each supported architecture's modules are wired; `causal_lm` and
`encoder_lm` export them per layer with static shapes and an explicit KV cache.
"""

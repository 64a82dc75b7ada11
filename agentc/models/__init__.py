"""Models: the built-in ones (agentc.models.registry) and any Hugging Face directory
(agentc.models.hf)."""


def register(name: str, path) -> None:
    """Make `name` stand for the model directory at `path` in this process: graph.py files
    may then say `model="name"`."""
    from agentc.models.registry import register as _register

    _register(name, path)

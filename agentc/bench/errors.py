"""The error `agentc bench` reports as one line and status 2 (a usage mistake)."""


class BenchError(ValueError):
    """A usage mistake: one line on stderr and status 2, like the other errors."""

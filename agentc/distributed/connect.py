"""Joining a running Ray cluster as a driver, with one-line errors.

The token of a cluster that `agentc ray up` started is found by its address (the state
directory records both), so `--ray ADDRESS` needs nothing else; for other clusters Ray's own
`RAY_AUTH_TOKEN_PATH` / `RAY_AUTH_TOKEN` / `~/.ray/auth_token` apply.
"""

from __future__ import annotations

import os
import socket

from agentc.distributed.local_cluster import read_state

CONNECT_TIMEOUT_S = 3.0


class RayUnavailable(RuntimeError):
    """The Ray cluster cannot be reached or used; the message names the address."""


def _reachable(address: str) -> None:
    host, _, port = address.rpartition(":")
    if not host or not port.isdigit():
        raise RayUnavailable(f"--ray {address}: expected HOST:PORT (the address `agentc ray up` printed)")
    try:
        socket.create_connection((host, int(port)), timeout=CONNECT_TIMEOUT_S).close()
    except OSError as e:
        raise RayUnavailable(f"--ray {address}: no Ray cluster answers there ({e.strerror or e}); "
                             f"start one with agentc ray up") from None


def connect(address: str, token: str | None = None) -> None:
    """ray.init(address), once per process (a second address is an error). `token`: the
    cluster's token file (default: the one `agentc ray up` recorded for this address)."""
    try:
        import ray
    except ImportError:
        raise RayUnavailable("Ray is not installed: pip install 'agentc[ray]'") from None
    state = read_state()
    if token is None and state and state.get("address") == address and not os.environ.get("RAY_AUTH_TOKEN"):
        token = state["token"]
    if token is not None:
        os.environ["RAY_AUTH_MODE"] = "token"
        os.environ["RAY_AUTH_TOKEN_PATH"] = token
        _reload_auth()
    if ray.is_initialized():
        current = ray.get_runtime_context().gcs_address
        if current != address:
            raise RayUnavailable(f"--ray {address}: this process is already connected to {current}")
        return
    _reachable(address)
    try:
        ray.init(address=address, logging_level="WARNING", log_to_driver=False, namespace="agentc",
                 configure_logging=True)
    except Exception as e:  # noqa: BLE001 - Ray raises many kinds; all mean the same to the user
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise RayUnavailable(f"--ray {address}: cannot join the Ray cluster: {first}") from None


def _reload_auth() -> None:
    """Ray's core reads the token settings once and caches them; read them again (what
    Ray's own tests do when they change them in a running process)."""
    from ray._raylet import AuthenticationTokenLoader, Config

    AuthenticationTokenLoader.instance().reset_cache()
    Config.initialize("")


def nodes() -> list[dict]:
    """The cluster's live nodes (ray.nodes())."""
    import ray

    return [n for n in ray.nodes() if n.get("Alive")]

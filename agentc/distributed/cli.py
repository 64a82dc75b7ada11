"""`agentc ray up | down | flags` and `agentc cluster from-ray`: the command-line side of
running builds across machines (`agentc run --ray` and `agentc devices --ray` live with
their commands in agentc/cli.py)."""

from __future__ import annotations

import sys
from pathlib import Path


def _up(args) -> int:
    from agentc.distributed import local_cluster

    state = local_cluster.up(args.node, host=args.host, object_store_mb=args.object_store_mb,
                             progress=lambda msg: print(f"[agentc] {msg}", file=sys.stderr, flush=True))
    for n in state["nodes"]:
        print(f"{n['label']}: {n['spec']} (pid {n['pid']}, log {n['log']})")
    print(f"token: {state['token']} (agentc finds it for this address; other Ray clients: "
          f"RAY_AUTH_MODE=token RAY_AUTH_TOKEN_PATH={state['token']})")
    print("stop: agentc ray down; lose a node: agentc ray down --node N")
    print(state["address"])
    return 0


def _down(args) -> int:
    from agentc.distributed import local_cluster

    stopped = local_cluster.down(args.node, kill=args.kill)
    print(f"stopped {', '.join(stopped) if stopped else 'nothing (no node was running)'}")
    return 0


def _restart(args) -> int:
    from agentc.distributed import local_cluster

    print(f"started {local_cluster.restart(args.node)} again")
    return 0


def _flags(args) -> int:
    import shlex

    from agentc.distributed.node_spec import parse_node, ray_start_args

    print(" ".join(shlex.quote(a) for a in ray_start_args(parse_node(args.node, args.name))))
    return 0


def _from_ray(args) -> int:
    from agentc.distributed.connect import connect, nodes
    from agentc.distributed.inventory import cluster_yaml, ray_nodes

    connect(args.address)
    text = cluster_yaml(ray_nodes(nodes()), args.address)
    if args.output:
        Path(args.output).write_text(text)
        print(f"cluster: {args.output}", file=sys.stderr)
    else:
        print(text, end="")
    return 0


def devices_on_ray(address: str) -> int:
    from agentc.distributed.connect import connect, nodes
    from agentc.distributed.inventory import ray_nodes, table

    connect(address)
    print(table(ray_nodes(nodes()), address))
    return 0


def register(sub) -> None:
    r = sub.add_parser("ray", help="a local multi-node Ray cluster: up, down, and ray start flags")
    rs = r.add_subparsers(dest="ray_cmd", required=True)
    up = rs.add_parser("up", help="start a head and worker nodes on this machine (real ray start processes)")
    up.add_argument("--node", action="append", required=True, metavar="KINDS",
                    help="a node's devices: cpu,vulkan | host | cuda=nvidia-h100-sxm (repeat; the first is the head)")
    up.add_argument("--host", default="127.0.0.1", help="the nodes' IP address (default 127.0.0.1: loopback, as 127.0.0.2, which Ray keeps)")
    up.add_argument("--object-store-mb", type=int, default=512, help="each node's object store (64-512)")
    up.set_defaults(func=_up)
    down = rs.add_parser("down", help="stop what agentc ray up started (or one node of it)")
    down.add_argument("--node", type=int, help="stop only the N-th node (1 = head is refused)")
    down.add_argument("--kill", action="store_true", help="SIGKILL, as a machine that dies")
    down.set_defaults(func=_down)
    re = rs.add_parser("restart", help="start a node stopped by down --node N again (a device that comes back)")
    re.add_argument("--node", type=int, required=True, help="the N-th node of agentc ray up")
    re.set_defaults(func=_restart)
    fl = rs.add_parser("flags", help="the ray start flags that make a machine advertise its agentc devices")
    fl.add_argument("--node", required=True, metavar="KINDS", help="cpu,vulkan | host | cuda=nvidia-h100-sxm")
    fl.add_argument("--name", required=True, help="the node's agentc name (unique in the cluster)")
    fl.set_defaults(func=_flags)
    c = sub.add_parser("cluster", help="cluster descriptions for placement")
    cs = c.add_subparsers(dest="cluster_cmd", required=True)
    fr = cs.add_parser("from-ray", help="a cluster.yaml of a running Ray cluster's agentc devices")
    fr.add_argument("address")
    fr.add_argument("-o", "--output", help="write here (default: print)")
    fr.set_defaults(func=_from_ray)

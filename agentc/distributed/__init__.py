"""Running builds across machines on Ray: nodes advertise agentc devices as Ray resources
(node_spec), `agentc ray up/down` starts a local multi-node cluster (local_cluster), a
running cluster becomes a cluster.yaml (inventory), and a session drives each device's
share of the plan in a Ray actor on a node that has it (device_actor, remote_device),
re-placing the plan when a device is lost (replan)."""

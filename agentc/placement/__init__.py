"""Placement: the cluster, which of its devices a request can use, the solver's
answer (place.py) and the SLA policy around it (policy.py)."""

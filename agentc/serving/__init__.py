"""Serving builds over HTTP on Ray Serve (`agentc serve`)."""

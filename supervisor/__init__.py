"""The supervisor: rings, actor processes, restarts, shutdown."""

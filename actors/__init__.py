"""Actor processes: one module per actor, and the runtime they all share."""

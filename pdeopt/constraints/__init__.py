"""pdeopt.constraints."""

"""pdeopt.discretizations."""

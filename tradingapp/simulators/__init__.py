"""Stand-ins for outside systems the platform trades through, run as their own processes."""

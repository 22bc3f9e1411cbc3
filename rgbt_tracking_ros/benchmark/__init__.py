"""`rgbt-track bench`: how fast the trackers run at batch 1, and whether the fast path keeps
the boxes. Model-only latency, the whole tracker step, the selective scan alone, peak memory,
per device and precision; a table on stdout and JSON with the machine and settings."""

"""Defaults shared by the core, the command line and the node, in a module that imports nothing
heavy (the node's parameter parsing and `rgbt-track --help` read it without torch)."""

# Ships with trained weights and runs in real time on a CPU: what a fresh install tracks with.
DEFAULT_MODEL = "compact_rgbt"

"""Defaults shared by the core, the command line and the node, in one module that imports
nothing, so any of them can read it without pulling in the others."""

# Ships with trained weights and runs in real time on a CPU: what a fresh install tracks with.
DEFAULT_MODEL = "compact_rgbt"

# What the tracker does with its target after each prediction (tracker/target_state.py); the
# first is the default. "official" is AINet's / DMTrack's own protocol, for benchmark runs.
TRACKER_POLICIES = ("robust", "official")

"""The tracking runtime: everything between camera frames and published states, without ROS.

* parameters.py: the one parameter schema (names, types, ranges, defaults, when a change
  takes effect, descriptions) and its checks; imports neither ROS nor torch;
* session.py: target requests, modes and the state of every output (NEW, TRACKING, LOST,
  STOPPED, ERROR) with its reason;
* targets.py: which held image pair a request names, and which boxes can be tracked;
* inputs.py: camera silence (no usable frame), pairing (StampPairer) and stream continuity;
* health.py: counters and the diagnostics level and message;
* core.py: TrackingRuntime, which ties them together for the node, `bag evaluate` and the demo;
* docs.py: docs/node.md, generated from the schema and the node's interface.

Import the submodules; this package imports nothing itself (parameters stay torch-free).
"""

"""RGB-thermal single-object tracking for ROS 2.

The core (``models``, ``tracker``, ``sync``, ``eval``, ``train``) imports no ROS module;
``ros`` wires it to topics.
"""
__version__ = "0.1.0"

# One package over several directories: in a dev venv the sources (editable install) plus the
# colcon install space that holds the generated `msg`/`srv` modules (see docs/ros-build.md).
__path__ = __import__("pkgutil").extend_path(__path__, __name__)

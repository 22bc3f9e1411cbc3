"""RGB-thermal single-object tracking for ROS 2.

The core (``models``, ``tracker``, ``sync``, ``eval``, ``train``) imports no ROS module;
``ros`` wires it to topics.
"""
__version__ = "0.1.0"

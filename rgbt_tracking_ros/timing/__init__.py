"""Camera timing without ROS: the stamp offset between the cameras found from the images
(offset.py), the node's check of it (monitor.py) and recordings with known offsets
(recordings.py). See docs/timing.md."""

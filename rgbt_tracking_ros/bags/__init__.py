"""Rosbag2 tools on the pure-Python `rosbags` package: no ROS install needed to write, read or
score bags (`ros2 bag` reads what is written here); only live replay needs rclpy.

Bag layout written by `from_sequence` and read by the others: `sensor_msgs/msg/Image` on the
RGB and thermal topics, and the ground truth as `geometry_msgs/msg/PolygonStamped` (see
`messages`) stamped with the RGB frame it annotates.
"""

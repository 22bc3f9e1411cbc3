"""The ROS 2 layer: the tracker node and the small modules it is made of.

``node`` (the lifecycle node and ``main``), ``parameters`` (names, ranges, checks),
``pairing`` (subscriptions, conversion, time pairing), ``session`` (target state shared by
services and the worker), ``mailbox`` (newest pair for the worker), ``messages`` and
``diagnostics`` (outputs), ``device`` (device fallback policy); images go through ``rgbt_tracking_ros.codec``.
Only ``node`` imports rclpy at import time.
"""

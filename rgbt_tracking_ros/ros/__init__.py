"""The ROS 2 layer: the tracker node and the small modules it is made of.

``node`` (the lifecycle node and ``main``), ``parameters`` (declarations from the schema),
``pairing`` (subscriptions, conversion, time pairing), ``messages`` and ``diagnostics``
(outputs), ``device`` (device fallback policy), ``live`` (the node on a replayed recording); the
decisions (pairing policy, the worker's mailbox, target states) are in
``rgbt_tracking_ros.runtime`` and images go through ``rgbt_tracking_ros.codec``.
Only ``node`` imports rclpy at import time.
"""

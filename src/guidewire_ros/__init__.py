"""ROS 2 nodes: thin rclpy wrappers around the guidewire library."""
import os
import signal
import sys

if sys.argv[:1] == ["-m"]:
    # `python -m guidewire_ros.<node>` (the runner's command): a stop signal while the node's imports
    # (rclpy, torch) still load ends the process quietly with status 0; common.run then takes over.
    # os._exit, not sys.exit: an exception raised inside a C extension's initialisation (rclpy's)
    # surfaces as "ImportError: initialization failed" with a traceback; nothing is open yet to close.
    for _number in (signal.SIGINT, signal.SIGTERM):
        signal.signal(_number, lambda *_: os._exit(0))

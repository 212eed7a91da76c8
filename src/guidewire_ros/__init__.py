"""ROS 2 nodes: thin rclpy wrappers around the guidewire library."""

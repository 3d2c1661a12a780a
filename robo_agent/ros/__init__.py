"""rclpy nodes: sim_robot, arm_bridge (and later policy_runner). Only this package imports rclpy."""

"""Pure logic shared by every adapter: no pybullet, rclpy, openai or mcp imports here.

Allowed imports: the standard library, numpy, pydantic, and PyYAML (a pure data parser
the robot-description and safety-policy loaders need).
"""

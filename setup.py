"""Shim so that `colcon build` (which needs a setup.py) installs this ament_python package.

All metadata lives in pyproject.toml; setup.cfg only routes console scripts to
lib/robo_agent, where `ros2 run robo_agent <executable>` looks for them.
"""

from setuptools import setup

setup()

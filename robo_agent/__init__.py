"""robo_agent: robot arms as agent tools, RL policy autoresearch, safe deployment over ROS 2."""

__version__ = "0.1.0"

"""Robot-path kinematics on Pinocchio (the only package in robo_agent that imports it).

`Kinematics` (FK, Jacobians, end-effector velocity, IK, link poses, and the collision
spheres the safety envelope checks) is built from the robot description's URDF, with no
simulator: see `model.py` and `spheres.py`.
"""

from robo_agent.kinematics.model import IkResult, Kinematics, pybullet_data_dir, resolve_urdf

__all__ = ["IkResult", "Kinematics", "pybullet_data_dir", "resolve_urdf"]

"""PyBullet simulation: facade, robots, tasks, Gymnasium envs, vector env."""

"""Hand-built policy artifacts for the deploy tests (real ONNX models, real specs).

`constant_artifact` outputs the same action every step (tanh of a bias; zero weights), so
a test knows exactly what the runner should command; `nan_artifact` outputs NaN. The spec
fields come from the real Panda reach env (`spec_fields_from_env`), as research writes them.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

TASK = "robo_agent/PandaReach-v0"


def reach_fields() -> dict:
    import gymnasium as gym
    import robo_agent.sim  # noqa: F401  (registers the envs)
    from robo_agent.autoresearch.onnx_policy import spec_fields_from_env

    env = gym.make(TASK)
    try:
        obs, _ = env.reset(seed=0)
        inputs = [("observation", obs["observation"].size), ("desired_goal", 3)]
        return spec_fields_from_env(env, TASK, inputs)
    finally:
        env.close()


def constant_artifact(folder: Path, action: list[float] | np.ndarray,
                      fields: dict | None = None) -> Path:
    from robo_agent.autoresearch.onnx_policy import build_mlp_model, write_artifact

    fields = fields or reach_fields()
    obs_dim = sum(i["size"] for i in fields["inputs"])
    act = np.asarray(action, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        bias = np.arctanh(np.clip(act, -0.999999, 0.999999)) if np.all(np.isfinite(act)) \
            else act
    model = build_mlp_model([np.zeros((act.size, obs_dim))], [bias], np.zeros(obs_dim),
                            np.ones(obs_dim))
    write_artifact(folder, model, fields)
    return folder


def nan_artifact(folder: Path) -> Path:
    fields = reach_fields()
    return constant_artifact(folder, [np.nan] * fields["action_dim"], fields)

"""Load and run a policy artifact (`policy.onnx` + `policy.json`): onnxruntime only.

Used by the frozen evaluator, the rehearsal and the policy runner alike. No pickle, no
torch: the spec is JSON validated by pydantic and its sha256 is checked before the model
is handed to onnxruntime, so a corrupt or swapped model never reaches a robot.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from robo_agent.core.artifact import ArtifactError, load_spec


class OnnxPolicy:
    """A loaded artifact: `act(obs_dict)` or `act_flat(array)` -> actions in [-1, 1]."""

    def __init__(self, folder: str | Path) -> None:
        import onnxruntime as ort

        self.folder = Path(folder)
        self.spec = load_spec(self.folder, verify=True)
        model = self.folder / self.spec.model_file
        options = ort.SessionOptions()
        # A policy step is a tiny MLP; one thread avoids contention with the simulator
        # and keeps a 500 Hz control loop on one core.
        options.intra_op_num_threads = 1
        options.inter_op_num_threads = 1
        options.log_severity_level = 3
        try:
            self.session = ort.InferenceSession(
                str(model), sess_options=options, providers=["CPUExecutionProvider"])
        except Exception as err:  # onnxruntime raises its own exception types
            raise ArtifactError(f"{model}: onnxruntime cannot load the model (truncated or "
                                f"not ONNX?): {str(err).splitlines()[0][:300]}") from None
        inputs = self.session.get_inputs()
        if len(inputs) != 1 or inputs[0].name != self.spec.input_name:
            raise ArtifactError(f"{model}: model input is not policy.json field input_name "
                                f"'{self.spec.input_name}'")
        width = inputs[0].shape[-1]
        if isinstance(width, int) and width != self.spec.obs_dim:
            raise ArtifactError(f"{model}: model takes {width} inputs, policy.json field "
                                f"inputs sums to {self.spec.obs_dim}")
        outputs = self.session.get_outputs()
        if self.spec.output_name not in [o.name for o in outputs]:
            raise ArtifactError(f"{model}: model has no output named policy.json field "
                                f"output_name '{self.spec.output_name}'")
        self._feed = np.zeros((1, self.spec.obs_dim), dtype=np.float32)

    def flatten(self, obs: dict[str, np.ndarray]) -> np.ndarray:
        """Concatenate the spec's input segments of a (possibly batched) observation dict."""
        parts = []
        for seg in self.spec.inputs:
            if seg.key not in obs:
                raise ArtifactError(f"observation has no '{seg.key}' entry")
            arr = np.asarray(obs[seg.key], dtype=np.float32)
            if arr.shape[-1] != seg.size:
                raise ArtifactError(
                    f"observation '{seg.key}' has size {arr.shape[-1]}, not {seg.size}"
                )
            parts.append(arr.reshape(-1, seg.size))
        return np.concatenate(parts, axis=1)

    def act_flat(self, flat: np.ndarray) -> np.ndarray:
        batch = np.asarray(flat, dtype=np.float32).reshape(-1, self.spec.obs_dim)
        return self.session.run([self.spec.output_name], {self.spec.input_name: batch})[0]

    def act(self, obs: dict[str, np.ndarray]) -> np.ndarray:
        """Actions for an observation dict; batched in, batched out (1-D in -> 1-D out)."""
        single = np.asarray(obs[self.spec.inputs[0].key]).ndim == 1
        actions = self.act_flat(self.flatten(obs))
        return actions[0] if single else actions

    def act_one(self, obs: dict[str, np.ndarray]) -> np.ndarray:
        """One unbatched step without intermediate allocations (the runner's hot path)."""
        start = 0
        for seg in self.spec.inputs:
            self._feed[0, start:start + seg.size] = obs[seg.key]
            start += seg.size
        out = self.session.run([self.spec.output_name], {self.spec.input_name: self._feed})[0]
        return np.asarray(out[0], dtype=np.float64)

    def command(self, action: np.ndarray) -> np.ndarray:
        """Scale actions in [-1, 1] into joint commands (`action * action_scale`)."""
        return np.asarray(action, dtype=np.float64) * np.asarray(self.spec.action_scale)

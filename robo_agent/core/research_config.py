"""`research.yaml`: the frozen settings of a research workspace (task, budget, seeds, rule).

The runner reads this file; `train.py` never does (it gets its task, budget and training
seed on the command line). Candidates may change only `train.py`, so a proposal cannot
move the budget. The held-out evaluation seeds are not here: `research init` draws them
from the OS's randomness into the workspace's secret file (see `draw_eval_seed_base`).
"""

from __future__ import annotations

import secrets
from pathlib import Path

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from robo_agent.core.errors import validation_problems

CONFIG_FILE = "research.yaml"
#: Held-out evaluation seeds lie at or above this; training seeds are small integers.
EVAL_SEED_BASE = 1_000_000_000
MAX_TRAIN_SEED = 1_000_000
#: the secret first evaluation seed is drawn uniformly below this (int64-safe)
EVAL_SEED_LIMIT = 2**62
MAX_EVAL_EPISODES = 1_000_000


class ResearchConfigError(ValueError):
    """research.yaml is missing or invalid."""


class ResearchConfig(BaseModel):
    """Settings every trial of a workspace shares."""

    model_config = ConfigDict(extra="forbid")

    task: str = Field(min_length=1, description="Gymnasium id, e.g. robo_agent/PandaReach-v0")
    budget_seconds: float = Field(
        gt=0, description="cap on the CPU seconds of train.py's process tree (sim workers "
        "too) per run; a run stops at budget_steps or at this cap, whichever comes first",
    )
    budget_steps: int = Field(
        default=5000, ge=0, description="env steps per run of train.py (0: CPU cap only)"
    )
    grace_seconds: float = Field(
        default=20.0, ge=0, description="extra time for start-up and saving before a kill"
    )
    wall_factor: float = Field(
        default=4.0, ge=1.0, description="a run is killed after wall_factor * budget + grace "
        "seconds of wall-clock even if its CPU time is under budget (an overloaded machine)",
    )
    repeats: int = Field(default=2, ge=1, le=20, description="training seeds per candidate")
    max_repeats: int = Field(
        default=4, ge=1, le=20, description="seeds a close call may race up to (the baseline "
        "trains on all of them); equal to repeats: no racing",
    )
    train_seeds: list[int] = Field(default_factory=lambda: [0, 1, 2, 3, 4, 5, 6, 7])
    eval_seed_base: int | None = Field(
        default=None, exclude=True, description="ignored (old workspaces); the seeds are secret"
    )
    eval_episodes: int = Field(default=100, ge=1, le=MAX_EVAL_EPISODES)
    memory_limit_mb: float = Field(
        default=8192.0, ge=64, description="memory of a candidate's process tree (MB)"
    )
    domain_randomization: bool = False
    z: float = Field(
        default=1.645, ge=0, description="false keeps: the one-sided normal tail above z "
        "(1.645: 5 %) per candidate; margin = max(min_margin, t * std. error) with t from "
        "Student's t at the noise estimate's degrees of freedom, split over racing's looks",
    )
    min_margin: float = Field(default=0.02, ge=0)
    min_cpu_gain: float = Field(
        default=0.5, ge=0, lt=1, description="a candidate with the incumbent's scores on every "
        "seed is kept only if it used this fraction less CPU",
    )
    device: str = Field(
        default="auto",
        pattern=r"^(auto|cpu|cuda(:\d+)?)$",
        description="torch device of train.py: auto (the GPU when torch sees one), cpu, cuda[:N]",
    )

    @model_validator(mode="after")
    def _seeds(self) -> ResearchConfig:
        if self.max_repeats < self.repeats:
            self.max_repeats = self.repeats  # older settings: no racing
        if len(self.train_seeds) < self.max_repeats:
            raise ValueError(f"need at least {self.max_repeats} train_seeds (one per repeat)")
        if len(set(self.train_seeds)) != len(self.train_seeds):
            raise ValueError("train_seeds must be distinct")
        if any(not 0 <= s < MAX_TRAIN_SEED for s in self.train_seeds):
            raise ValueError(f"train_seeds must lie in [0, {MAX_TRAIN_SEED})")
        return self

    @property
    def racing_looks(self) -> int:
        """Decisions a race may take: one at each seed count repeats..max_repeats."""
        return self.max_repeats - self.repeats + 1

    def save(self, folder: str | Path) -> Path:
        path = Path(folder) / CONFIG_FILE
        path.write_text(
            "# Frozen research settings: the runner reads them, train.py never does.\n"
            + yaml.safe_dump(self.model_dump(), sort_keys=False),
            encoding="utf-8",
        )
        return path

    @classmethod
    def load(cls, folder: str | Path) -> ResearchConfig:
        path = Path(folder) / CONFIG_FILE
        try:
            data = yaml.safe_load(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise ResearchConfigError(f"{path}: missing (is this a research workspace?)") from None
        except yaml.YAMLError as err:
            raise ResearchConfigError(f"{path}: malformed YAML: {err}") from None
        try:
            return cls.model_validate(data or {})
        except ValidationError as err:
            problems = validation_problems(err)
            raise ResearchConfigError(f"{path}: {problems}") from None


def draw_eval_seed_base() -> int:
    """A secret first evaluation seed from the OS's randomness, in [10^9, 2^62 - 10^6)."""
    return EVAL_SEED_BASE + secrets.randbelow(EVAL_SEED_LIMIT - MAX_EVAL_EPISODES - EVAL_SEED_BASE)

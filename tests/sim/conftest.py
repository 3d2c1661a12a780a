"""Shared fixtures for the sim tests (real PyBullet, DIRECT mode)."""

from __future__ import annotations

import warnings

import pytest
import robo_agent.sim  # noqa: F401  (registers the env ids)


@pytest.fixture(autouse=True)
def _quiet_gym_bound_warnings():
    # Unbounded Box observation spaces are correct here (positions, velocities);
    # gymnasium's checker warns about them on every call.
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*Box observation space (min|max)imum.*")
        yield

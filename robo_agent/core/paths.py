"""Where the package's data files (robot descriptions, safety policies) live.

The same code runs from a source checkout, a `pip install -e`, a wheel install
(data files under `<prefix>/share/robo_agent`) and a colcon install (under each
`AMENT_PREFIX_PATH` entry's `share/robo_agent`). We search those in that order.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

PACKAGE = "robo_agent"
CONFIG_ENV = "ROBO_AGENT_CONFIG_DIR"


def _candidates() -> list[Path]:
    here = Path(__file__).resolve()
    found: list[Path] = []
    override = os.environ.get(CONFIG_ENV)
    if override:
        found.append(Path(override))
    # Source checkout / editable install: <repo>/robo_agent/core/paths.py -> <repo>/config
    found.append(here.parents[2] / "config")
    found.append(Path(sys.prefix) / "share" / PACKAGE / "config")
    for prefix in os.environ.get("AMENT_PREFIX_PATH", "").split(os.pathsep):
        if prefix:
            found.append(Path(prefix) / "share" / PACKAGE / "config")
    # colcon install: <prefix>/lib/pythonX.Y/site-packages/robo_agent/core/paths.py
    if len(here.parents) > 5:
        found.append(here.parents[5] / "share" / PACKAGE / "config")
    return found


def config_dir() -> Path:
    """The first existing config directory (holding `robots/`), or raise naming all tried."""
    tried = _candidates()
    for path in tried:
        if (path / "robots").is_dir():
            return path
    listing = "\n  ".join(str(p) for p in tried)
    raise FileNotFoundError(
        f"no robo_agent config directory (with robots/) found; set {CONFIG_ENV}."
        f" Tried:\n  {listing}"
    )


def robots_dir() -> Path:
    return config_dir() / "robots"


def safety_dir() -> Path:
    return config_dir() / "safety"

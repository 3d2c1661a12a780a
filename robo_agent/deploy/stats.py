"""Paired comparison of ROS vs direct success on the same goals (numpy-free, pure)."""

from __future__ import annotations

import math


def wilson(successes: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """Wilson score interval of a success rate."""
    if n == 0:
        return (0.0, 1.0)
    p = successes / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return (max(0.0, centre - half), min(1.0, centre + half))


def mcnemar_exact(only_direct: int, only_ros: int) -> float:
    """Two-sided exact McNemar p-value from the discordant pairs."""
    n = only_direct + only_ros
    if n == 0:
        return 1.0
    k = min(only_direct, only_ros)
    tail = sum(math.comb(n, i) for i in range(k + 1)) / 2.0**n
    return min(1.0, 2.0 * tail)


def paired_summary(ros: list[bool], direct: list[bool]) -> dict[str, float | int]:
    """Rates, parity (ros / direct), discordant pairs, the McNemar p and Wilson intervals."""
    n = len(ros)
    r, d = sum(ros), sum(direct)
    only_direct = sum(1 for a, b in zip(ros, direct, strict=True) if b and not a)
    only_ros = sum(1 for a, b in zip(ros, direct, strict=True) if a and not b)
    return {
        "episodes": n, "ros_success": r / n if n else 0.0,
        "direct_success": d / n if n else 0.0,
        "parity": (r / d) if d else (1.0 if r == 0 else float("inf")),
        "only_direct": only_direct, "only_ros": only_ros,
        "mcnemar_p": mcnemar_exact(only_direct, only_ros),
        "ros_wilson95": list(wilson(r, n)), "direct_wilson95": list(wilson(d, n)),
    }

"""Racing seeds trained side by side, speculatively: the ledger is the one-by-one ledger.

`_repeat` (train in the sandbox + the frozen evaluator, tested for real in
tests/research/test_parallel_repeats.py) is replaced by a stand-in with a fixed score
per seed: what is under test here is only which seeds run, which count, and what is
left on disk, and real training would make the scores noisy and the test minutes long.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest
from robo_agent.autoresearch import execute
from robo_agent.autoresearch.execute import Job, RepeatResult, run_job

SCORES = {10: 0.6, 11: 0.55, 12: 0.0, 13: 1.0}  # close after 2 seeds, a loser after 3
RACE = {"incumbent_scores": [0.5, 0.5, 0.5, 0.5], "noise_groups": [[0.2, 0.8], [0.1, 0.9]],
        "episodes": 100, "repeats": 2, "max_repeats": 4, "z": 1.645, "min_margin": 0.02}


@pytest.fixture
def trained(monkeypatch: pytest.MonkeyPatch) -> list[tuple[int, float, float]]:
    calls: list[tuple[int, float, float]] = []
    lock = threading.Lock()

    def fake_repeat(job: Job, folder: Path, k: int, seed: int, on_phase: object
                    ) -> RepeatResult:
        start = time.monotonic()
        (folder / f"r{k}").mkdir(parents=True, exist_ok=True)
        time.sleep(0.2)
        with lock:
            calls.append((seed, start, time.monotonic()))
        status = "crash" if seed == 99 else "ok"
        return RepeatResult(seed=seed, status=status, score=SCORES.get(seed, 0.0))

    monkeypatch.setattr(execute, "_repeat", fake_repeat)
    return calls


def _job(parallel: int, seeds: list[int], race: dict | None = RACE) -> Job:
    return Job(trial=1, commit="c0ffee", source="", task="t", budget_seconds=1.0,
               grace_seconds=1.0, train_seeds=seeds, eval_seed_base=10**9, eval_episodes=100,
               device="cpu", race=race, parallel_repeats=parallel)


def test_a_race_stops_at_the_same_seed_side_by_side(tmp_path: Path, trained: list) -> None:
    one = run_job(_job(1, [10, 11, 12, 13]), tmp_path / "one")
    assert [r.seed for r in one.repeats] == [10, 11, 12]  # decided after the third seed
    assert sorted(s for s, *_ in trained) == [10, 11, 12]  # the fourth never trained
    trained.clear()
    two = run_job(_job(2, [10, 11, 12, 13]), tmp_path / "two")
    assert [r.seed for r in two.repeats] == [10, 11, 12]
    assert sorted(s for s, *_ in trained) == [10, 11, 12, 13]  # trained alongside...
    assert not (tmp_path / "two" / "r3").exists()  # ...and dropped, folder and all
    assert (tmp_path / "two" / "r2").exists()
    by_seed = {s: (a, b) for s, a, b in trained}
    (a0, a1), (b0, b1) = by_seed[12], by_seed[13]
    assert a0 < b1 and b0 < a1  # the two racing seeds overlapped


def test_a_crash_in_a_speculative_batch_ends_the_job_there(tmp_path: Path,
                                                           trained: list) -> None:
    res = run_job(_job(2, [10, 11, 99, 13]), tmp_path)
    assert [(r.seed, r.status) for r in res.repeats] == [(10, "ok"), (11, "ok"), (99, "crash")]
    assert not (tmp_path / "r3").exists()


def test_without_a_race_every_seed_counts(tmp_path: Path, trained: list) -> None:
    res = run_job(_job(2, [10, 11, 12, 13], race=None), tmp_path)
    assert [r.seed for r in res.repeats] == [10, 11, 12, 13]

"""train.py source handling: the tunable block, edits confined to it, the vetting rules."""

from __future__ import annotations

from pathlib import Path

import pytest

from robo_agent.core.research_source import (
    SourceError,
    apply_values,
    current_values,
    parse_tunables,
    vet_train_source,
)

TEMPLATE = (Path(__file__).resolve().parents[2] / "autoresearch" / "train.py").read_text()


def test_template_declares_tunables_and_passes_vetting() -> None:
    vet_train_source(TEMPLATE)
    tunables = {t.name: t for t in parse_tunables(TEMPLATE)}
    assert {"learning_rate", "gamma", "batch_size", "n_envs"} <= set(tunables)
    lr = tunables["learning_rate"]
    assert lr.kind == "log" and lr.low < lr.value < lr.high
    assert (
        tunables["n_envs"].kind == "choice"
        and tunables["n_envs"].value in tunables["n_envs"].choices
    )


def test_apply_values_changes_only_the_block() -> None:
    new = apply_values(TEMPLATE, {"learning_rate": 0.0007, "batch_size": 300.4, "n_envs": 4})
    assert current_values(new)["learning_rate"] == pytest.approx(0.0007)
    assert current_values(new)["batch_size"] == 300
    assert current_values(new)["n_envs"] == 4
    old_lines, new_lines = TEMPLATE.splitlines(), new.splitlines()
    changed = [i for i, (a, b) in enumerate(zip(old_lines, new_lines, strict=True)) if a != b]
    start = next(i for i, ln in enumerate(old_lines) if "# >>> tunable" in ln)
    end = next(i for i, ln in enumerate(old_lines) if "# <<< tunable" in ln)
    assert len(changed) == 3 and all(start < i < end for i in changed)
    vet_train_source(new)


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"learning_rate": 1.0}, "outside"),
        ({"n_envs": 3}, "outside"),
        ({"nonexistent": 1}, "unknown tunables"),
        ({"gamma": float("nan")}, "outside"),
    ],
)
def test_apply_values_rejects_out_of_range(values: dict, message: str) -> None:
    with pytest.raises(SourceError, match=message):
        apply_values(TEMPLATE, values)


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda s: s + "\nfrom robo_agent.autoresearch.evaluate import evaluate\n", "evaluator"),
        (lambda s: s + "\nimport robo_agent.autoresearch.runner\n", "evaluator"),
        (lambda s: s + "\nimport pickle\n", "pickle"),
        (lambda s: s + "\nSEEDS = open('research.yaml').read()\n", "research.yaml"),
        (lambda s: s + "\nx = 'eval_seed_base'\n", "eval_seed"),
        (lambda s: s + "\nstate = torch.load('x.pt')\n", "weights_only"),
        (lambda s: s + "\nm = __import__('os')\n", "dynamic imports"),
        (lambda s: s + "\ndef broken(:\n", "does not parse"),
        (lambda s: s.replace("# >>> tunable", "# tunable gone"), "exactly one"),
        (lambda s: "", "empty"),
    ],
)
def test_vetting_rejects_contract_breaches(edit, message: str) -> None:
    with pytest.raises(SourceError, match=message):
        vet_train_source(edit(TEMPLATE))


def test_torch_load_with_weights_only_is_allowed() -> None:
    vet_train_source(TEMPLATE + "\nstate = torch.load('x.pt', weights_only=True)\n")


def test_malformed_tunable_line_names_the_line() -> None:
    bad = TEMPLATE.replace("gamma: float = 0.95  # float[0.85, 0.98]", "gamma = 0.95")
    with pytest.raises(SourceError, match=r"train.py line \d+"):
        parse_tunables(bad)

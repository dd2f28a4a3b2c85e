"""The README's "From Python" example is a configuration that finishes its learning-rate warm-up."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest

from seqrl.validation import warmup_warning

README = Path(__file__).resolve().parents[1] / "README.md"


def readme_python_example() -> str:
    text = README.read_text()
    assert "From Python:" in text, "the README lost its Python example"
    return text.split("From Python:", 1)[1].split("```python", 1)[1].split("```", 1)[0]


def test_readme_python_example_finishes_its_warmup(monkeypatch: pytest.MonkeyPatch):
    """Runs the example with train and evaluate replaced by stubs that keep the config."""
    import seqrl.evaluation.evaluate
    import seqrl.train

    seen = {}

    def fake_train(cfg, **kwargs):
        seen["cfg"] = cfg
        return SimpleNamespace(model=None, spec=None, config=cfg)

    monkeypatch.setattr(seqrl.train, "train", fake_train)
    monkeypatch.setattr(seqrl.evaluation.evaluate, "evaluate", lambda *args, **kwargs: [])
    exec(compile(readme_python_example(), str(README), "exec"), {})
    cfg = seen["cfg"]
    assert warmup_warning(cfg.steps, cfg.warmup_steps) is None
    assert cfg.warmup_steps < cfg.steps


def test_readme_tt_example_builds_a_tt_config_that_finishes_its_warmup(monkeypatch: pytest.MonkeyPatch):
    import seqrl.evaluation.evaluate
    import seqrl.train

    text = README.read_text().split("From Python:", 1)[1]
    blocks = [b.split("```", 1)[0] for b in text.split("```python")[1:3]]
    seen = {}

    def fake_train(cfg, **kwargs):
        seen.setdefault("cfgs", []).append(cfg)
        return SimpleNamespace(model=None, spec=None, config=cfg)

    def fake_evaluate(*args, **kwargs):
        seen["planner"] = kwargs.get("settings")
        return []

    monkeypatch.setattr(seqrl.train, "train", fake_train)
    monkeypatch.setattr(seqrl.evaluation.evaluate, "evaluate", fake_evaluate)
    scope: dict = {}
    for block in blocks:  # the TT example continues the DT one (its imports)
        exec(compile(block, str(README), "exec"), scope)
    tt = seen["cfgs"][-1]
    assert tt.family == "tt" and warmup_warning(tt.steps, tt.warmup_steps) is None
    from seqrl.families.tt.planner import planner_settings

    assert planner_settings(tt.dataset, tt.discount, seen["planner"]).beam_width == 16

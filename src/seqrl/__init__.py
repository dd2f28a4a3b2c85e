"""seqrl: offline reinforcement learning as sequence modelling.

Importing the package has no side effects; submodules are imported where used.

    import seqrl
    policy = seqrl.load("runs/my-run")   # a trained policy (seqrl.evaluation.acting.RunPolicy)
"""

__version__ = "0.1.0"


def load(run_dir, *, target=None, settings=None, device="cpu"):
    """A run directory's trained policy, ready to act: `reset()`, `act(observation)`,
    `observe(reward)` (seqrl.evaluation.acting.RunPolicy). The directory needs only its model.safetensors;
    `target` conditions a DT on another return, `settings` are the family's own (a TT's planner)."""
    from seqrl.evaluation.acting import load_policy

    return load_policy(run_dir, target=target, settings=settings, device=device)

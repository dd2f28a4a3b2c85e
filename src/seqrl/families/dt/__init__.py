"""The Decision Transformer (Chen et al. 2021) with the action representations of Annett &
Andersen, as a family. Everything only the DT needs lives in this package:

    config.py     TrainConfig (`seqrl train`'s flags) and the per-task presets
    representations.py  the registry of action representations (no torch: the config reads it)
    actions.py    the representations' embeddings, heads and codecs
    context.py    per-episode context windows (right-padded) for acting
    model.py      the model: (R, s, a) tokens through the shared trunk (seqrl.models.gpt)
    policy.py     return-to-go bookkeeping and context windows for evaluation
    transfer.py   what `seqrl finetune` keeps, rebuilds and freezes
    export.py     the exported policy (`seqrl export`): one step over a window, and its runner
                  (exported_runner.py, standalone)
    family.py     the family object the training loop, checkpoints and evaluation look up by its
                  tag: tokenizer artefact, model, context sampler, policy, target-return conditions

This package's __init__ imports nothing, so that its config (and `seqrl train --help`) loads
without torch; `seqrl.families` imports family.py, which registers the family.
"""

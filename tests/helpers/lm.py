"""A tiny random GPT-2 saved with save_pretrained, a tiny corpus, and tiny DT settings."""

from __future__ import annotations

from pathlib import Path

# Large enough init weights that a wrong key map or the wrong GELU shows in the outputs.
GPT2_SIZES = dict(vocab_size=96, n_positions=40, n_embd=16, n_layer=2, n_head=2, initializer_range=0.3)
DT_TINY = dict(steps=3, warmup_steps=1, context_len=4, batch_size=4, log_every=1, checkpoint_every=1,
               precision="fp32", device="cpu", rtg_scale=0.1, targets=(10.0,), progress=False, learning_rate=1e-3)
CORPUS = ("The quick brown fox jumps over the lazy dog. A dictionary defines words with other words; "
          "reinforcement learning from offline data asks which actions led to high returns.\n") * 40


def save_tiny_gpt2(directory: Path, seed: int = 0, **overrides) -> Path:
    import torch
    from transformers import GPT2Config, GPT2LMHeadModel

    torch.manual_seed(seed)
    model = GPT2LMHeadModel(GPT2Config(**{**GPT2_SIZES, **overrides}, resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0,
                                       bos_token_id=0, eos_token_id=0))
    model.save_pretrained(directory)
    return directory

# A `seqrl pretrain-lm` run small enough for a test.
LM_TINY = ["--vocab-size", "300", "--context-len", "16", "--embed-dim", "16", "--n-layers", "2", "--n-heads", "2",
           "--batch-size", "4", "--warmup-steps", "1", "--log-every", "1", "--checkpoint-every", "2",
           "--precision", "fp32", "--device", "cpu", "--no-progress"]

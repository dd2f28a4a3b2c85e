"""seqrl.memory: the activation estimate the training loop refuses oversized windows with."""

from __future__ import annotations

import torch

from seqrl.memory import activation_bytes, available_bytes, format_bytes


def test_activation_estimate_follows_the_per_layer_count_and_grows_with_the_window_squared():
    # One layer, batch 1, 10 tokens, width 8, 2 heads: 10 x (17*8 + 2.5*2*10) numbers at 4 bytes.
    assert activation_bytes(1, 10, 8, 1, 2) == 10 * (17 * 8 + 2.5 * 2 * 10) * 4
    assert activation_bytes(4, 10, 8, 3, 2) == 12 * activation_bytes(1, 10, 8, 1, 2)  # linear in batch and layers
    long, short = activation_bytes(1, 10_000, 128, 1, 1), activation_bytes(1, 1000, 128, 1, 1)
    assert long > 50 * short  # attention's tokens x tokens term dominates long windows
    # The configurations the kernel killed at ~21 GB are far past this machine's 24 GB.
    assert activation_bytes(64, 3 * 5000, 128, 3, 1) > 100 * 2**30  # the DT's --context-len 5000
    assert activation_bytes(256, 500 * 16 - 1, 128, 4, 4) > 100 * 2**30  # the TT's --sequence-length 500 on hopper
    assert activation_bytes(64, 3 * 20, 128, 3, 1) < 2**30  # CORL's DT fits anywhere


def test_available_memory_is_read_on_this_machine_and_formatted():
    have = available_bytes(torch.device("cpu"))
    assert have is None or 0 < have < 2**50
    assert format_bytes(512) == "512 B" and format_bytes(1536) == "1.5 KB" and format_bytes(3 * 2**30) == "3.0 GB"

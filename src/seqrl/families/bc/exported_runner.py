"""Run an exported behaviour-cloning policy without seqrl (written by `seqrl export` as runner.py).

Needs numpy, and onnxruntime (policy.onnx) or torch (policy.pt). Usage, in the export directory
or with it on sys.path:

    from runner import Policy
    policy = Policy("path/to/export")
    policy.reset(n=1)                      # n episodes side by side
    obs, _ = env.reset(seed=0)
    while True:
        action = np.clip(policy.act(obs[None])[0], env.action_space.low, env.action_space.high)
        obs, reward, terminated, truncated, _ = env.step(action)
        policy.observe(action[None], [reward])   # a no-op for BC; kept so every runner is driven alike
        if terminated or truncated:
            break

It keeps each episode's last `history_len` raw observations (fewer at the episode's start: the
step zeroes the missing ones after normalising, as seqrl's BC policy does).
"""

from __future__ import annotations

import json
import os

import numpy as np


def load_step(directory: str, threads: int = 1, device: str = "cpu"):
    """The exported step as a function of numpy arrays (in manifest.json's input order) -> numpy."""
    with open(os.path.join(directory, "manifest.json")) as f:
        manifest = json.load(f)
    path = os.path.join(directory, manifest["file"])
    if manifest["format"] == "onnx":
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.intra_op_num_threads = threads  # a tiny model: more threads only add synchronisation
        options.inter_op_num_threads = 1
        session = ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])
        names = [i.name for i in session.get_inputs()]

        def run(*arrays):
            return session.run(None, dict(zip(names, arrays)))[0]
    else:
        import torch

        module = torch.jit.load(path, map_location=device)

        def run(*arrays):
            with torch.no_grad():
                return module(*(torch.from_numpy(np.ascontiguousarray(a)).to(device) for a in arrays)).cpu().numpy()
    return manifest, run


class Policy:
    """Acts for n episodes at once, each from its last `history_len` observations."""

    def __init__(self, directory: str = ".", threads: int = 1, device: str = "cpu", **_ignored) -> None:
        self.manifest, self._step = load_step(directory, threads, device)
        self.H, self.obs_dim = self.manifest["history_len"], self.manifest["obs_dim"]
        self.reset(1)

    def reset(self, n: int = 1) -> None:
        self.history = np.zeros((n, self.H, self.obs_dim), np.float32)  # raw, oldest first
        self.lengths = np.zeros(n, np.int64)  # real observations held, <= H

    def act(self, observations, rows=None) -> np.ndarray:
        """Actions (len(rows), act_dim) for raw observations (len(rows), obs_dim); rows: the
        episodes these are (default all)."""
        rows = np.arange(len(self.lengths)) if rows is None else np.asarray(rows, np.int64)
        obs = np.asarray(observations, np.float32).reshape(len(rows), 1, self.obs_dim)
        self.history[rows] = np.concatenate([self.history[rows, 1:], obs], axis=1)
        self.lengths[rows] = np.minimum(self.lengths[rows] + 1, self.H)
        return self._step(self.history[rows], self.lengths[rows])

    def observe(self, actions, rewards, rows=None) -> None:
        """Nothing to keep: a BC policy reads observations only."""

"""Run an exported Decision Transformer policy without seqrl (written by `seqrl export` as runner.py).

Needs numpy, and onnxruntime (policy.onnx) or torch (policy.pt). Usage, in the export directory
or with it on sys.path:

    from runner import Policy
    policy = Policy("path/to/export", target_return=None)  # None: the run's first target
    policy.reset(n=1)                                      # n episodes side by side
    obs, _ = env.reset(seed=0)
    while True:
        action = np.clip(policy.act(obs[None])[0], env.action_space.low, env.action_space.high)
        obs, reward, terminated, truncated, _ = env.step(action)
        policy.observe(action[None], [reward])
        if terminated or truncated:
            break

It keeps what the stateless step does not: each episode's window of its last K steps
(right-padded, the oldest dropped once full) and its return-to-go, unscaled in float64,
starting at the target and dropping by every reward, multiplied by rtg_scale when written into
the window (the conventions of seqrl's own evaluation, so the step sees the same inputs).
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
    """Acts for n episodes at once, each conditioned on the same target return."""

    def __init__(self, directory: str = ".", target_return: float | None = None, threads: int = 1,
                 device: str = "cpu") -> None:
        self.manifest, self._step = load_step(directory, threads, device)
        m = self.manifest
        self.K, self.obs_dim, self.act_dim = m["context_len"], m["obs_dim"], m["act_dim"]
        self.rtg_scale = m["rtg_scale"]
        self.target = float(m["targets"][0] if target_return is None else target_return)
        self.reset(1)

    def reset(self, n: int = 1) -> None:
        """Start n episodes: empty windows, returns-to-go at the target."""
        K = self.K
        self.observations = np.zeros((n, K, self.obs_dim), np.float32)  # raw, right-padded
        self.actions = np.zeros((n, K, self.act_dim), np.float32)
        self.returns_to_go = np.zeros((n, K, 1), np.float32)  # scaled
        self.timesteps = np.zeros((n, K), np.int64)
        self.lengths = np.zeros(n, np.int64)  # real steps held per row, <= K
        self.rtg = np.full(n, self.target, np.float64)  # unscaled return still to collect
        self.t = np.zeros(n, np.int64)  # steps taken in each episode

    def _rows(self, rows):
        return np.arange(len(self.rtg)) if rows is None else np.asarray(rows, np.int64)

    def act(self, observations, rows=None) -> np.ndarray:
        """Actions (len(rows), act_dim) for raw observations (len(rows), obs_dim); rows: the
        episodes these are (default all)."""
        rows = self._rows(rows)
        full = rows[self.lengths[rows] == self.K]
        for array in (self.observations, self.actions, self.returns_to_go, self.timesteps):
            array[full, :-1] = array[full, 1:]  # fancy indexing copies: the shift is safe
        pos = np.minimum(self.lengths[rows], self.K - 1)
        self.lengths[rows] = pos + 1
        self.observations[rows, pos] = np.asarray(observations, np.float32).reshape(len(rows), self.obs_dim)
        self.actions[rows, pos] = 0.0
        self.returns_to_go[rows, pos, 0] = (self.rtg[rows] * self.rtg_scale).astype(np.float32)
        self.timesteps[rows, pos] = self.t[rows]
        return self._step(self.observations[rows], self.actions[rows], self.returns_to_go[rows],
                          self.timesteps[rows], self.lengths[rows])

    def observe(self, actions, rewards, rows=None) -> None:
        """The actions the environments took (clipped) and the rewards they returned."""
        rows = self._rows(rows)
        self.actions[rows, self.lengths[rows] - 1] = np.asarray(actions, np.float32).reshape(len(rows), self.act_dim)
        self.rtg[rows] -= np.asarray(rewards, np.float64).reshape(len(rows))
        self.t[rows] += 1

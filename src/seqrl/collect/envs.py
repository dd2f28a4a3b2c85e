"""seqrl's own gymnasium environments (ids under `seqrl/`), registered on first use.

- `seqrl/PointMazeFourRooms-v0`: the goal-reaching four-rooms maze (seqrl.collect.maze, needs
  gymnasium-robotics);
- `seqrl/DoorKey-5x5-v0`, `seqrl/DoorKey-6x6-v0`: Key-to-Door on minigrid's DoorKey with a flat
  observation (seqrl.collect.keydoor, needs minigrid);
- `seqrl/ShortestPathGraph-v0`: the DT paper's shortest-path graph (seqrl.collect.graph);
- `seqrl/Atari-v0`: an ALE game with the DQN preprocessing and 4 stacked frames, the game named
  by its `game` keyword (seqrl.collect.atari, needs ale-py).

Registration imports neither optional package: each is imported when its environment is made.
"""

from __future__ import annotations


def register_envs() -> None:
    """Register every `seqrl/` environment with gymnasium (idempotent)."""
    from seqrl.collect import atari, graph, keydoor, maze

    atari.register_envs()
    maze.register_envs()
    keydoor.register_envs()
    graph.register_envs()

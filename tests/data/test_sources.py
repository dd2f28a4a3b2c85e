"""D4RL HDF5 loading, Minari save/load (atomic), the name resolver, listing and `seqrl datasets`."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import gymnasium as gym
import h5py
import numpy as np
import pytest

from seqrl.data import minari_io
from seqrl.data.scores import D4RL_REFERENCE_RETURNS
from seqrl.data.sources import (
    dataset_id_for,
    datasets_command,
    list_datasets,
    load_d4rl_hdf5,
    load_dataset,
    load_minari,
    save_dataset,
)
from seqrl.errors import DatasetError


# ------------------------------------------------------------------------------------ D4RL
def write_d4rl(path: Path, n: int = 10, *, terminals=(), timeouts=(), obs_dim: int = 3, act_dim: int = 2,
               next_observations: bool = False, drop: str | None = None, **overrides) -> dict:
    """Write a D4RL-style file; returns the arrays written."""
    rng = np.random.default_rng(0)
    arrays = {
        "observations": rng.normal(size=(n, obs_dim)).astype(np.float32),
        "actions": rng.uniform(-1, 1, size=(n, act_dim)).astype(np.float32),
        "rewards": rng.normal(size=n).astype(np.float32),
        "terminals": np.isin(np.arange(n), terminals),
        "timeouts": np.isin(np.arange(n), timeouts),
    }
    if next_observations:
        arrays["next_observations"] = rng.normal(size=(n, obs_dim)).astype(np.float32)
    arrays.update(overrides)
    path.parent.mkdir(parents=True, exist_ok=True)
    with h5py.File(path, "w") as f:
        for key, value in arrays.items():
            if key != drop:
                f.create_dataset(key, data=value)
        f.create_dataset("infos/qpos", data=np.zeros((n, 2)))  # D4RL files carry extras; ignored
    return arrays


def test_d4rl_splits_on_terminals_and_timeouts_and_keeps_trailing_partial(tmp_path):
    arrays = write_d4rl(tmp_path / "hopper-medium-v2.hdf5", n=10, terminals=[2], timeouts=[6])
    ds = load_d4rl_hdf5(tmp_path / "hopper-medium-v2.hdf5")

    np.testing.assert_array_equal(ds.episode_starts, [0, 3, 7])
    np.testing.assert_array_equal(ds.episode_lengths, [3, 4, 3])
    np.testing.assert_array_equal(np.flatnonzero(ds.terminations), [2])
    # The timeout, and the last step of the trailing partial episode (the data just stops).
    np.testing.assert_array_equal(np.flatnonzero(ds.truncations), [6, 9])
    np.testing.assert_array_equal(ds.observations, arrays["observations"])
    np.testing.assert_array_equal(ds.actions, arrays["actions"])
    np.testing.assert_array_equal(ds.rewards, arrays["rewards"])
    assert ds.final_observations is None  # no next_observations in the file
    assert ds.metadata["source"] == "d4rl"
    assert ds.metadata["env_id"] == "Hopper-v5"
    assert ds.name == "hopper-medium-v2"


def test_d4rl_last_step_ending_an_episode_adds_no_extra_truncation(tmp_path):
    write_d4rl(tmp_path / "x.hdf5", n=6, terminals=[2, 5])
    ds = load_d4rl_hdf5(tmp_path / "x.hdf5", name="mine")
    np.testing.assert_array_equal(ds.episode_starts, [0, 3])
    assert not ds.truncations.any()
    assert ds.name == "mine"
    assert "env_id" not in ds.metadata  # 'x' is no D4RL task family


def test_d4rl_next_observations_give_final_observations(tmp_path):
    arrays = write_d4rl(tmp_path / "walker2d-expert-v2.hdf5", n=8, timeouts=[3], next_observations=True)
    ds = load_d4rl_hdf5(tmp_path / "walker2d-expert-v2.hdf5")
    np.testing.assert_array_equal(ds.final_observations, arrays["next_observations"][[3, 7]])
    assert ds.metadata["env_id"] == "Walker2d-v5"


def test_d4rl_names_resolve_under_d4rl_root(d4rl_dir):
    arrays = write_d4rl(d4rl_dir / "halfcheetah-medium-v2.hdf5", n=5, timeouts=[4])
    for name in ("d4rl:halfcheetah-medium-v2", "halfcheetah-medium-v2", "halfcheetah-medium-v2.hdf5",
                 str(d4rl_dir / "halfcheetah-medium-v2.hdf5")):
        ds = load_dataset(name)
        np.testing.assert_array_equal(ds.rewards, arrays["rewards"])
        assert ds.metadata["env_id"] == "HalfCheetah-v5"
    assert load_d4rl_hdf5("d4rl:halfcheetah-medium-v2").num_transitions == 5


def test_d4rl_missing_file(d4rl_dir):
    with pytest.raises(DatasetError, match=r"not found.*hopper-expert-v2\.hdf5"):
        load_dataset("d4rl:hopper-expert-v2")
    with pytest.raises(DatasetError, match="no such file"):
        load_dataset(str(d4rl_dir / "nowhere" / "x.hdf5"))


def test_d4rl_text_file_is_not_hdf5(tmp_path):
    path = tmp_path / "fake.hdf5"
    path.write_text("observations,actions\n1,2\n")
    with pytest.raises(DatasetError, match="not an HDF5 file"):
        load_dataset(str(path))


@pytest.mark.parametrize("key", ["observations", "actions", "rewards", "terminals", "timeouts"])
def test_d4rl_missing_key_is_named(tmp_path, key):
    write_d4rl(tmp_path / "d.hdf5", drop=key)
    with pytest.raises(DatasetError, match=f"missing the key.*'{key}'"):
        load_d4rl_hdf5(tmp_path / "d.hdf5")


def test_d4rl_length_mismatch_names_both_keys_and_lengths(tmp_path):
    write_d4rl(tmp_path / "d.hdf5", n=10, rewards=np.zeros(9, np.float32))
    with pytest.raises(DatasetError, match=r"'observations' has 10 rows but 'rewards' has 9"):
        load_d4rl_hdf5(tmp_path / "d.hdf5")


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_d4rl_nan_or_inf(tmp_path, bad):
    obs = np.zeros((10, 3), np.float32)
    obs[4, 1] = bad
    write_d4rl(tmp_path / "d.hdf5", observations=obs)
    with pytest.raises(DatasetError, match=r"observations contain NaN or inf \(first at step 4\)"):
        load_d4rl_hdf5(tmp_path / "d.hdf5")


def test_d4rl_empty(tmp_path):
    write_d4rl(tmp_path / "d.hdf5", n=0)
    with pytest.raises(DatasetError, match="empty"):
        load_d4rl_hdf5(tmp_path / "d.hdf5")


# ------------------------------------------------------------------------------------ Minari
def assert_same_data(a, b):
    for key in ("observations", "actions", "rewards", "terminations", "truncations", "episode_starts"):
        np.testing.assert_array_equal(getattr(a, key), getattr(b, key), err_msg=key)


def test_minari_round_trip(minari_root, make_dataset):
    ds = make_dataset(lengths=(5, 3, 4), terminated=[True, False, True])
    path = save_dataset(
        ds, "seqrl/toy-v0", "LunarLanderContinuous-v3", ref_min_score=-120.0, ref_max_score=280.0,
        extra_metadata={"policy": "heuristic + noise 0.3", "seed": np.int64(7), "noise": np.float32(0.25)},
    )
    assert path == minari_root / "seqrl" / "toy-v0"
    back = load_dataset("seqrl/toy-v0")

    assert_same_data(back, ds)
    np.testing.assert_array_equal(back.final_observations, ds.final_observations)
    meta = back.metadata
    assert meta["name"] == "seqrl/toy-v0"
    assert meta["env_id"] == "LunarLanderContinuous-v3"
    assert (meta["ref_min_score"], meta["ref_max_score"]) == (-120.0, 280.0)
    assert meta["action_low"] == [-1.0, -1.0] and meta["action_high"] == [1.0, 1.0]
    assert meta["source"] == "seqrl"
    assert (meta["policy"], meta["seed"], meta["noise"]) == ("heuristic + noise 0.3", 7, 0.25)


def test_minari_files_are_readable_by_minari_itself(minari_root, make_dataset):
    import minari

    ds = make_dataset(lengths=(4, 6))
    save_dataset(ds, dataset_id_for("toy"), "LunarLanderContinuous-v3", ref_min_score=0.0, ref_max_score=200.0)
    m = minari.load_dataset("seqrl/toy-v0", download=False)
    assert m.total_episodes == 2 and m.total_steps == 10
    assert m.env_spec.id == "LunarLanderContinuous-v3"
    np.testing.assert_allclose(minari.get_normalized_score(m, np.array([50.0])), [0.25])
    first = next(iter(m.iterate_episodes()))
    assert first.observations.shape == (5, 3)  # T + 1


def test_minari_without_final_observations_repeats_the_last(make_dataset):
    ds = make_dataset(lengths=(3, 2), with_final_observations=False)
    save_dataset(ds, "seqrl/nofinal-v0", "Unregistered-v0")
    back = load_dataset("nofinal")
    np.testing.assert_array_equal(back.final_observations, ds.observations[[2, 4]])
    assert back.metadata["env_id"] == "Unregistered-v0"
    assert back.metadata["ref_min_score"] is None and back.metadata["ref_max_score"] is None


def test_minari_load_by_folder_path(minari_root, make_dataset):
    ds = make_dataset()
    path = save_dataset(ds, "other/ns/thing-v3", "Pendulum-v1")
    for name in (str(path), str(path / "data")):
        assert_same_data(load_dataset(name), ds)
    assert_same_data(load_minari(path), ds)
    assert_same_data(load_dataset("other/ns/thing"), ds)  # no version: the highest local one


def test_minari_existing_id_needs_overwrite(make_dataset):
    old, new = make_dataset(seed=1), make_dataset(lengths=(2, 2), seed=2)
    save_dataset(old, "seqrl/toy-v0", "Pendulum-v1")
    with pytest.raises(DatasetError, match="already exists.*overwrite=True"):
        save_dataset(new, "seqrl/toy-v0", "Pendulum-v1")
    assert_same_data(load_dataset("toy"), old)
    save_dataset(new, "seqrl/toy-v0", "Pendulum-v1", overwrite=True)
    assert_same_data(load_dataset("toy"), new)


def no_hidden_leftovers(root: Path) -> bool:
    return not [p for p in root.iterdir() if p.name.startswith(".seqrl-")]


def interrupt_after_first_episode(monkeypatch):
    """Make Minari's HDF5 writer fail after writing one episode (a crash mid-write)."""
    from minari.dataset._storages import hdf5_storage

    real = hdf5_storage._add_episode_to_group
    calls = {"n": 0}

    def flaky(episode_buffer, episode_group, spaces=None):
        calls["n"] += 1
        if calls["n"] > 1:
            raise KeyboardInterrupt("simulated interrupt")
        return real(episode_buffer, episode_group, spaces)

    monkeypatch.setattr(hdf5_storage, "_add_episode_to_group", flaky)
    return calls


def test_interrupted_write_leaves_no_dataset(minari_root, make_dataset, monkeypatch):
    calls = interrupt_after_first_episode(monkeypatch)
    with pytest.raises(KeyboardInterrupt):
        save_dataset(make_dataset(), "seqrl/half-v0", "Pendulum-v1")
    assert calls["n"] == 2  # it really died midway
    assert not (minari_root / "seqrl" / "half-v0").exists()
    assert no_hidden_leftovers(minari_root)
    assert list_datasets() == []
    with pytest.raises(DatasetError, match="unknown dataset 'half'"):
        load_dataset("half")
    assert os.environ["MINARI_DATASETS_PATH"] == str(minari_root)  # restored


def test_interrupted_overwrite_keeps_the_old_dataset(minari_root, make_dataset, monkeypatch):
    old = make_dataset(seed=1)
    save_dataset(old, "seqrl/toy-v0", "Pendulum-v1")
    interrupt_after_first_episode(monkeypatch)
    with pytest.raises(KeyboardInterrupt):
        save_dataset(make_dataset(seed=2), "seqrl/toy-v0", "Pendulum-v1", overwrite=True)
    assert_same_data(load_dataset("toy"), old)
    assert [row["id"] for row in list_datasets()] == ["seqrl/toy-v0"]
    assert no_hidden_leftovers(minari_root)


def test_failed_swap_restores_the_old_dataset(minari_root, make_dataset, monkeypatch):
    old = make_dataset(seed=1)
    save_dataset(old, "seqrl/toy-v0", "Pendulum-v1")
    real_rename = os.rename

    def rename(src, dst):
        if ".seqrl-staging-" in str(src):  # moving the new dataset into place
            raise OSError("disk full (simulated)")
        return real_rename(src, dst)

    with monkeypatch.context() as patch, pytest.raises(OSError, match="simulated"):
        patch.setattr(minari_io.os, "rename", rename)
        save_dataset(make_dataset(seed=2), "seqrl/toy-v0", "Pendulum-v1", overwrite=True)
    assert_same_data(load_dataset("toy"), old)
    assert no_hidden_leftovers(minari_root)


def test_leftover_staging_folder_is_never_listed_or_loaded(minari_root, make_dataset):
    # What a killed process (no cleanup ran) leaves behind: a complete-looking dataset in staging.
    path = save_dataset(make_dataset(), "seqrl/toy-v0", "Pendulum-v1")
    stale = minari_root / ".seqrl-staging-dead" / "seqrl" / "stale-v0"
    shutil.copytree(path, stale)
    assert [row["id"] for row in list_datasets()] == ["seqrl/toy-v0"]
    with pytest.raises(DatasetError, match="unknown dataset 'stale'"):
        load_dataset("stale")


def test_missing_minari_dataset_names_it_and_lists_local_ones(make_dataset):
    save_dataset(make_dataset(), "seqrl/present-v0", "Pendulum-v1")
    with pytest.raises(DatasetError, match=r"'seqrl/absent-v0' not found.*local datasets: seqrl/present-v0"):
        load_minari("seqrl/absent-v0")


def test_unknown_name_says_what_was_tried(d4rl_dir, make_dataset):
    save_dataset(make_dataset(), "seqrl/present-v0", "Pendulum-v1")
    with pytest.raises(DatasetError) as info:
        load_dataset("hopper-medium")
    message = str(info.value)
    assert "'seqrl/hopper-medium-v0'" in message
    assert str(d4rl_dir / "hopper-medium.hdf5") in message
    assert "seqrl/present-v0" in message


def test_not_a_dataset_path(tmp_path):
    (tmp_path / "notes.txt").write_text("hello")
    with pytest.raises(DatasetError, match="not a dataset"):
        load_dataset(str(tmp_path / "notes.txt"))
    (tmp_path / "folder").mkdir()
    with pytest.raises(DatasetError, match="not a Minari dataset folder"):
        load_dataset(str(tmp_path / "folder"))


@pytest.mark.parametrize("damage", ["metadata", "hdf5", "missing_hdf5"])
def test_corrupt_minari_dataset(minari_root, make_dataset, damage):
    path = save_dataset(make_dataset(), "seqrl/toy-v0", "Pendulum-v1")
    if damage == "metadata":
        (path / "data" / "metadata.json").write_text("{not json")
    elif damage == "hdf5":
        (path / "data" / "main_data.hdf5").write_bytes(b"\x89HDF\r\n\x1a\n truncated")
    else:
        (path / "data" / "main_data.hdf5").unlink()
    with pytest.raises(DatasetError, match="corrupt or unreadable"):
        load_dataset("toy")
    [row] = list_datasets()
    assert row["id"] == "seqrl/toy-v0" and row["error"].startswith("unreadable")


def test_minari_actions_outside_the_action_space(minari_root):
    # A dataset written by another tool whose actions break its declared bounds.
    import minari
    from minari.data_collector import EpisodeBuffer

    actions = np.array([[0.5], [2.0]], np.float32)
    buffer = EpisodeBuffer(observations=np.zeros((3, 2), np.float32), actions=actions,
                           rewards=np.zeros(2), terminations=[False, True], truncations=[False, False])
    with pytest.warns(UserWarning):
        minari.create_dataset_from_buffers(
            "ext/bad-v0", [buffer], observation_space=gym.spaces.Box(-5, 5, (2,), np.float32),
            action_space=gym.spaces.Box(-1, 1, (1,), np.float32),
        )
    with pytest.raises(DatasetError, match=r"outside the action space: action\[1\]\[0\] = 2"):
        load_dataset("ext/bad-v0")


def _foreign_minari(dataset_id, actions, action_space):
    """A dataset written by Minari's own writer (no seqrl metadata) with the given action space."""
    import minari
    from minari.data_collector import EpisodeBuffer

    buffer = EpisodeBuffer(observations=np.zeros((len(actions) + 1, 2), np.float32), actions=actions,
                           rewards=np.arange(len(actions), dtype=np.float64), terminations=[False] * (len(actions) - 1) + [True],
                           truncations=[False] * len(actions))
    with pytest.warns(UserWarning):
        minari.create_dataset_from_buffers(
            dataset_id, [buffer], observation_space=gym.spaces.Box(-5, 5, (2,), np.float32), action_space=action_space,
        )


def test_minari_discrete_space_written_by_minari_loads_as_indices(minari_root):
    _foreign_minari("ext/discrete-v0", np.array([0, 2, 1]), gym.spaces.Discrete(3))
    data = load_dataset("ext/discrete-v0")
    assert data.discrete and data.num_actions == 3
    assert data.actions.dtype == np.int64 and data.actions.shape == (3, 1)
    assert data.actions[:, 0].tolist() == [0, 2, 1]
    assert data.metadata["action_space"] == {"type": "Discrete", "n": 3}
    assert "action_low" not in data.metadata


def test_minari_multidiscrete_and_shifted_discrete_spaces_are_refused_by_name(minari_root):
    _foreign_minari("ext/multi-v0", np.array([[0, 1], [1, 0]]), gym.spaces.MultiDiscrete([2, 2]))
    with pytest.raises(DatasetError, match="MultiDiscrete action spaces .* are not supported"):
        load_dataset("ext/multi-v0")
    _foreign_minari("ext/shifted-v0", np.array([-1, 0]), gym.spaces.Discrete(2, start=-1))
    with pytest.raises(DatasetError, match="starts at -1"):
        load_dataset("ext/shifted-v0")


def test_bad_ids_and_metadata(make_dataset):
    with pytest.raises(DatasetError, match="invalid dataset name"):
        dataset_id_for("a/b")
    with pytest.raises(DatasetError, match="invalid Minari dataset id"):
        save_dataset(make_dataset(), "no version", "Pendulum-v1")
    with pytest.raises(DatasetError, match="metadata 'policy' is a object"):
        save_dataset(make_dataset(), "seqrl/x-v0", "Pendulum-v1", extra_metadata={"policy": object()})
    assert list_datasets() == []


# ------------------------------------------------------------------------------------ listing
def test_list_datasets_statistics_and_scores(make_dataset):
    lunar = make_dataset(lengths=(3, 4), seed=1)
    hopper = make_dataset(lengths=(2,), seed=2)
    plain = make_dataset(lengths=(5,), seed=3)
    save_dataset(lunar, "seqrl/lunar-v0", "LunarLanderContinuous-v3", ref_min_score=-100.0, ref_max_score=300.0)
    save_dataset(hopper, "seqrl/hopper-v0", "Hopper-v5")  # D4RL's reference returns apply
    save_dataset(plain, "zzz/plain-v1", "Pendulum-v1")  # no reference returns anywhere

    rows = {row["id"]: row for row in list_datasets()}
    assert list(rows) == ["seqrl/hopper-v0", "seqrl/lunar-v0", "zzz/plain-v1"]
    lunar_row = rows["seqrl/lunar-v0"]
    returns = lunar.episode_returns
    assert (lunar_row["episodes"], lunar_row["transitions"]) == (2, 7)
    assert lunar_row["env_id"] == "LunarLanderContinuous-v3"
    assert lunar_row["return_mean"] == pytest.approx(returns.mean(), rel=1e-6)
    assert lunar_row["return_min"] == pytest.approx(returns.min(), rel=1e-6)
    assert lunar_row["return_max"] == pytest.approx(returns.max(), rel=1e-6)
    assert lunar_row["normalized_score"] == pytest.approx(100 * (returns.mean() + 100) / 400, rel=1e-6)
    low, high = D4RL_REFERENCE_RETURNS["hopper"]
    expected = 100 * (hopper.episode_returns.mean() - low) / (high - low)
    assert rows["seqrl/hopper-v0"]["normalized_score"] == pytest.approx(expected, rel=1e-6)
    assert rows["zzz/plain-v1"]["normalized_score"] is None
    assert all(row["error"] is None for row in rows.values())


def test_datasets_command_json_and_table(make_dataset, capsys):
    save_dataset(make_dataset(lengths=(3, 4)), "seqrl/lunar-v0", "LunarLanderContinuous-v3",
                 ref_min_score=-100.0, ref_max_score=300.0)
    datasets_command(json=True)
    [row] = json.loads(capsys.readouterr().out)
    assert (row["id"], row["episodes"], row["transitions"]) == ("seqrl/lunar-v0", 2, 7)
    datasets_command()
    assert "seqrl/lunar-v0" in capsys.readouterr().out


def test_cli_datasets_json(make_dataset, capsys):
    from seqrl.cli import main

    save_dataset(make_dataset(lengths=(2, 2, 2)), "seqrl/toy-v0", "Pendulum-v1")
    main(["datasets", "--json"])
    [row] = json.loads(capsys.readouterr().out)
    assert row["id"] == "seqrl/toy-v0" and row["episodes"] == 3 and row["normalized_score"] is None


def test_cli_datasets_empty_table(capsys):
    from seqrl.cli import main

    main(["datasets"])
    assert "No datasets" in capsys.readouterr().out

"""Dataset-name presets (CORL's return scale and target returns per MuJoCo task)."""

from __future__ import annotations

import pytest

from seqrl.families.dt.config import preset_for

HOPPER = {"rtg_scale": 0.001, "targets": (3600.0, 1800.0)}


@pytest.mark.parametrize("name", ["hopper-medium", "seqrl/hopper-medium-v0", "d4rl:hopper-medium-v2",
                                  "hopper-medium-v2.hdf5", "Hopper-v5"])
def test_hopper_names_get_corls_preset(name):
    assert preset_for(name) == HOPPER


@pytest.mark.parametrize("name, family", [("mujoco/hopper/medium-v0", "hopper"),
                                          ("mujoco/halfcheetah/expert-v0", "halfcheetah")])
def test_minari_style_mujoco_ids_get_their_tasks_preset(name, family):
    assert preset_for(name) == preset_for(family)


def test_the_tt_planner_presets_follow_the_same_task_rule():
    from seqrl.families.tt.planner import planner_settings

    assert planner_settings("mujoco/halfcheetah/medium-v0", 0.99).horizon == 5
    assert planner_settings("d4rl:/data/halfcheetah-medium-v2.hdf5", 0.99).beam_width == 32
    assert planner_settings("mujoco/hopper/medium-v0", 0.99).horizon == 15

"""`seqrl eval RUN --video out.mp4`: MP4 through evaluation/video.py with imageio-ffmpeg (the
`video` extra), and a clear error without it."""

from __future__ import annotations

import sys

import pytest

from seqrl.cli import main
from seqrl.errors import ConfigError

from tests.helpers.envs import SeedLengthEnv, register
from tests.helpers.envs import trained


@pytest.fixture(autouse=True)
def _env():
    register()


def test_eval_writes_an_mp4_video(tmp_path):
    pytest.importorskip("imageio_ffmpeg", reason="MP4 needs the video extra (pip install 'seqrl[video]')")
    import imageio.v2 as imageio

    result = trained(tmp_path)
    path = tmp_path / "videos" / "episode.mp4"
    main(["eval", str(result.run_dir), "--episodes", "1", "--seed", "3", "--targets", "-1", "--video", str(path)])
    with open(path, "rb") as f:
        assert f.read(12)[4:8] == b"ftyp"  # an ISO media (MP4) file
    reader = imageio.get_reader(path)
    try:
        frames = [frame for frame in reader]
        fps = reader.get_meta_data()["fps"]
    finally:
        reader.close()
    env = SeedLengthEnv()
    env.reset(seed=3)
    assert len(frames) == env.length + 1  # after the reset and after every step
    assert frames[0].shape == (16, 16, 3)
    assert fps == pytest.approx(SeedLengthEnv.metadata["render_fps"])


def test_mp4_without_imageio_ffmpeg_is_a_clear_error(tmp_path, monkeypatch):
    from seqrl.loading import load_run
    from seqrl.evaluation.video import record_episode

    result = trained(tmp_path)
    run = load_run(result.run_dir)
    monkeypatch.setitem(sys.modules, "imageio_ffmpeg", None)  # import fails as if not installed
    with pytest.raises(ConfigError, match=r"MP4 needs the imageio-ffmpeg package"):
        record_episode(run.model, run.spec, tmp_path / "x.mp4", context_len=5, target=-1.0)
    assert not (tmp_path / "x.mp4").exists()

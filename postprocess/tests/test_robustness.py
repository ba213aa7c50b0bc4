"""robustness_figure: the tracked curves of run files against training tokens."""

import numpy as np

from conftest import write_run

from quopt_post.robustness import ROBUSTNESS_PANELS, has_robustness, robustness_figure
from quopt_post.runfile import read_run

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _track(scale):
    steps = np.array([0.0, 10.0, 20.0, 30.0])
    return {"step": steps, "tokens": 1024 * steps, "loss_fp": 3 + 0 * steps, "loss_quant": 3.1 + 0 * steps,
            "loss_increase": scale * np.array([0.1, -0.01, 0.02, 0.03]), "R_L": scale * np.array([0.2, 1e-3, 2e-3, 4e-3]),
            "mmr_tomean_mean": [4, 5, 6, 7], "mmr_mean": [2e9, 3, 4, np.nan], "kurtosis_mean": [3, 5, 9, 12],
            "seconds": [0.1] * 4}


def test_read_and_plot(tmp_path):
    a = write_run(tmp_path / "a" / "run.h5", optimizer="adamw", robustness=_track(1.0))
    b = write_run(tmp_path / "b" / "run.h5", optimizer="muon", lr=0.02, robustness=_track(2.0))
    c = write_run(tmp_path / "c" / "run.h5", optimizer="soap")  # not tracked
    runs = [read_run(p) for p in (a, b, c)]
    assert [has_robustness(r) for r in runs] == [True, True, False]
    assert runs[1].robustness["R_L"].tolist() == [0.4, 2e-3, 4e-3, 8e-3]
    assert runs[0].robustness["tokens"].tolist() == [0.0, 10240.0, 20480.0, 30720.0]
    assert runs[2].robustness == {}
    out = robustness_figure(runs, tmp_path / "r.png", label="run")
    assert out == tmp_path / "r.png" and out.read_bytes()[:8] == PNG_MAGIC and out.stat().st_size > 5000
    assert len(ROBUSTNESS_PANELS) == 5


def test_nothing_tracked_writes_nothing(tmp_path):
    run = read_run(write_run(tmp_path / "a" / "run.h5"))
    assert robustness_figure([run], tmp_path / "none.png") is None
    assert not (tmp_path / "none.png").exists()

import json
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scripts"))
from summarize import summarize  # noqa: E402


def write_run(root, name, last, best=None):
    run = root / name
    run.mkdir()
    lines = [{"epoch": 0, "train_loss": 1.0}]
    if last is not None:
        lines.append({"final_last_uar": last[0], "final_last_war": last[1],
                      "final_best_uar": best[0], "final_best_war": best[1]})
    (run / "log.txt").write_text("".join(json.dumps(line) + "\n" for line in lines))


def test_table_has_every_fold_and_the_mean(tmp_path):
    write_run(tmp_path, "split01", (60.0, 75.0), (62.0, 76.0))
    write_run(tmp_path, "split02", (64.0, 77.0), (65.0, 78.5))
    write_run(tmp_path, "split03", None)
    table = summarize(tmp_path, "split0*").splitlines()
    assert table[2] == "| split01 | 60.00 / 75.00 | 62.00 / 76.00 |"
    assert table[4] == "| mean of 2 | 62.00 / 76.00 | 63.50 / 77.25 |"
    assert table[-1] == "not finished: split03"


def test_no_runs_is_an_error(tmp_path):
    with pytest.raises(SystemExit, match="no run folders"):
        summarize(tmp_path)

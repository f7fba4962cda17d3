"""predict.py --videos: a corpus with equal file names in different folders, a list file and a corrupt video;
index.csv, resume (also after a kill), refused setting changes, and a 2-process torchrun run equal to one
process."""
import csv
import os
import signal
import socket
import subprocess
import sys
import time

import numpy as np
import pytest

import predict
from inference.corpus import collect_videos, output_name, shares
from scripts.make_synthetic_video import write_video
from tests.helpers import ROOT, tiny_checkpoint

pytestmark = pytest.mark.filterwarnings("ignore:LandmarkFeatures")
FLAGS = ("--landmark_weights", "random", "--device", "cpu", "--no_detect", "--source_fps", "8", "--no_video")


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    root = tmp_path_factory.mktemp("corpus")
    for folder, expressions, seed in (("a", "happy,sad", 0), ("b", "angry,fear", 1), ("c", "surprise,happy", 2)):
        (root / "videos" / folder).mkdir(parents=True)
        write_video(root / "videos" / folder / "clip.mp4", expressions.split(","), 6, 64, 8.0, seed)
    (root / "videos" / "b" / "notes.mp4").write_text("not a video")
    (root / "more").mkdir()
    write_video(root / "more" / "extra.mp4", ["disgust", "neutral"], 6, 64, 8.0, 3)
    (root / "list.txt").write_text("# listed videos\nmore/extra.mp4\n\nvideos/a/clip.mp4\n")
    checkpoint = tiny_checkpoint(root / "ckpt.pth")
    return root, checkpoint


def corpus_run(root, checkpoint, output_dir, *extra):
    return predict.run(["--videos", str(root / "videos"), str(root / "list.txt"), "--checkpoint", str(checkpoint),
                        "--output_dir", str(output_dir), *FLAGS, *extra])


def read_index(output_dir):
    with open(output_dir / "index.csv", newline="") as handle:
        return list(csv.DictReader(handle))


def predictions(folder):
    with open(folder / "predictions.csv", newline="") as handle:
        rows = list(csv.reader(handle))
    return rows[0], [r[:9] for r in rows[1:]], np.array([[float(v) for v in r[9:-1]] for r in rows[1:]])


@pytest.fixture(scope="module")
def first_run(corpus, tmp_path_factory):
    root, checkpoint = corpus
    output_dir = tmp_path_factory.mktemp("run") / "out"
    return output_dir, corpus_run(root, checkpoint, output_dir)


def test_collect_videos_names_and_shares(corpus):
    root, _ = corpus
    videos = collect_videos([root / "videos", root / "list.txt"])
    assert [os.path.relpath(v, root) for v in videos] == ["videos/a/clip.mp4", "videos/b/clip.mp4",
                                                          "videos/b/notes.mp4", "videos/c/clip.mp4",
                                                          "more/extra.mp4"]  # a/clip.mp4 listed twice: once
    names = [output_name(v) for v in videos]
    assert len(set(names)) == len(names) and names[0].startswith("clip_mp4-") and names[1].startswith("clip_mp4-")
    assert names == [output_name(v) for v in collect_videos([root / "videos", root / "list.txt"])]  # stable
    split = shares(videos, 2)
    assert sorted(split[0] + split[1]) == list(range(5)) and not set(split[0]) & set(split[1])
    sizes = [os.path.getsize(v) for v in videos]
    loads = [sum(sizes[i] for i in s) for s in split]
    assert abs(loads[0] - loads[1]) <= max(sizes)
    with pytest.raises(Exception, match="no such file or folder"):
        collect_videos([root / "nowhere"])
    (root / "bad_list.txt").write_text("more/extra.mp4\nmore/missing.mp4\n")
    with pytest.raises(Exception, match=r"bad_list.txt:2: no such video file: more/missing.mp4"):
        collect_videos([root / "bad_list.txt"])


def test_index_and_outputs(corpus, first_run):
    root, _ = corpus
    output_dir, code = first_run
    assert code == 1  # the corrupt video failed, the others did not stop
    rows = read_index(output_dir)
    assert [os.path.relpath(r["video"], root) for r in rows][:3] == ["videos/a/clip.mp4", "videos/b/clip.mp4",
                                                                     "videos/b/notes.mp4"]
    assert [r["status"] for r in rows] == ["ok", "ok", "failed", "ok", "ok"]
    assert "cannot be opened as a video" in rows[2]["error"] and rows[2]["output"] not in os.listdir(output_dir)
    for row in rows[:2] + rows[3:]:
        assert (row["frames"], row["duration_s"], row["tracks"]) == ("12", "1.375", "1")
        assert sorted(os.listdir(output_dir / row["output"])) == ["predictions.csv", "summary.json", "timeline.png"]
    first, second = (predictions(output_dir / row["output"])[2].tolist() for row in rows[:2])
    assert first != second
    assert sorted(p for p in os.listdir(output_dir) if not p.startswith("clip_mp4-") and not p.startswith("extra"))\
        == ["corpus.json", "index.csv"]


def test_rerun_skips_finished_videos_and_refuses_other_settings(corpus, first_run, tmp_path, capsys):
    root, checkpoint = corpus
    output_dir, _ = first_run
    before = {r["output"]: os.path.getmtime(output_dir / r["output"] / "summary.json")
              for r in read_index(output_dir) if r["status"] == "ok"}
    capsys.readouterr()
    assert corpus_run(root, checkpoint, output_dir) == 1
    err = capsys.readouterr().err
    assert err.count("done before, skipped") == 4 and err.count("FAILED") == 1
    assert "5 videos: 4 ok, 0 partial, 1 failed" in err
    assert {o: os.path.getmtime(output_dir / o / "summary.json") for o in before} == before
    assert corpus_run(root, checkpoint, output_dir, "--smooth", "3") == 2
    assert "other settings (options differ" in capsys.readouterr().err


def test_torchrun_two_processes_equal_one(corpus, first_run, tmp_path):
    root, checkpoint = corpus
    one, _ = first_run
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    result = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2",
                             "--master_addr", "127.0.0.1", "--master_port", str(port), "predict.py",
                             "--videos", str(root / "videos"), str(root / "list.txt"), "--checkpoint",
                             str(checkpoint), "--output_dir", str(tmp_path / "two"), *FLAGS],
                            cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert result.returncode != 0 and "5 videos: 4 ok, 0 partial, 1 failed" in result.stderr, result.stderr[-2000:]
    assert "[rank 0]" in result.stderr and "[rank 1]" in result.stderr
    rows_one, rows_two = read_index(one), read_index(tmp_path / "two")
    assert [(r["video"], r["output"], r["status"]) for r in rows_two] == \
        [(r["video"], r["output"], r["status"]) for r in rows_one]
    for row in rows_one:
        if row["status"] == "ok":
            header_1, columns_1, p_1 = predictions(one / row["output"])
            header_2, columns_2, p_2 = predictions(tmp_path / "two" / row["output"])
            assert (header_1, columns_1) == (header_2, columns_2)
            np.testing.assert_allclose(p_1, p_2, atol=2e-6)
    assert not [p for p in os.listdir(tmp_path / "two") if p.startswith(".index-rank")]


def test_killed_run_resumes(corpus, first_run, tmp_path):
    root, checkpoint = corpus
    output_dir = tmp_path / "killed"
    command = [sys.executable, "predict.py", "--videos", str(root / "videos"), str(root / "list.txt"),
               "--checkpoint", str(checkpoint), "--output_dir", str(output_dir), *FLAGS]
    process = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 120
    while time.time() < deadline and not (output_dir / "index.csv").exists():
        time.sleep(0.02)
    process.send_signal(signal.SIGKILL)
    process.wait()
    finished = [p for p in os.listdir(output_dir) if not p.startswith(".") and (output_dir / p).is_dir()]
    assert 1 <= len(finished) < 4  # killed in the middle of the corpus
    assert all((output_dir / p / "summary.json").exists() for p in finished)  # no half folder counts as done
    result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert result.returncode == 1 and result.stderr.count("done before, skipped") == len(finished)
    assert not [p for p in os.listdir(output_dir) if ".partial-" in p]
    one, _ = first_run
    for row in read_index(one):
        if row["status"] == "ok":
            np.testing.assert_allclose(predictions(output_dir / row["output"])[2], predictions(one / row["output"])[2],
                                       atol=2e-6)

"""predict.py --videos: a corpus with equal file names in different folders, a list file and a corrupt video;
index.csv, resume (after SIGTERM and after a kill), refused setting changes, a 2-process torchrun run equal to one
process; faults injected into single videos (the model, the writer, a file that changes after it was probed, a full
disk, one rank's video raising, a rank killed) fail that video only."""
import csv
import errno
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

import predict
from inference import pipeline
from inference.corpus import collect_videos, output_name, shares
from inference.model import VideoModel
from inference.outputs import PredictionWriter
from scripts.make_synthetic_video import write_video
from tests.helpers import ROOT, tiny_checkpoint
from tests.videos import write_cv2_video

pytestmark = pytest.mark.filterwarnings("ignore:LandmarkFeatures")
FLAGS = ("--landmark_weights", "random", "--device", "cpu", "--no_detect", "--source_fps", "8", "--no_video")
# predict.py with a fault for the video $FAULT_VIDEO: raise (FAULT=raise), or kill its own process the first time
# (FAULT=die; $FAULT_ONCE marks that it happened), as the out-of-memory killer does
FAULTY_PREDICT = """
import os, signal, sys
sys.path.insert(0, os.getcwd())
import predict
from inference import pipeline

analyze = pipeline.Analyzer.analyze


def faulty(self, video, output_dir, *args, **kwargs):
    if video == os.environ["FAULT_VIDEO"]:
        if os.environ["FAULT"] == "raise":
            raise RuntimeError("injected fault")
        if not os.path.exists(os.environ["FAULT_ONCE"]):
            open(os.environ["FAULT_ONCE"], "w").close()
            os.kill(os.getpid(), signal.SIGKILL)
    return analyze(self, video, output_dir, *args, **kwargs)


pipeline.Analyzer.analyze = faulty
sys.exit(predict.run())
"""


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


def torchrun(script, arguments, env=None, *options):
    """Two processes on this machine (--standalone: a c10d rendezvous on a free port, which restarts need)."""
    return subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
                           *options, script, *arguments],
                          cwd=ROOT, capture_output=True, text=True, timeout=300, env={**os.environ, **(env or {})})


@pytest.mark.slow
def test_torchrun_two_processes_equal_one_and_a_raising_video_fails_alone(corpus, first_run, tmp_path):
    root, checkpoint = corpus
    one, _ = first_run
    (tmp_path / "faulty_predict.py").write_text(FAULTY_PREDICT)
    raising = str(root / "videos" / "c" / "clip.mp4")
    result = torchrun(str(tmp_path / "faulty_predict.py"),
                      ["--videos", str(root / "videos"), str(root / "list.txt"), "--checkpoint", str(checkpoint),
                       "--output_dir", str(tmp_path / "two"), *FLAGS], dict(FAULT_VIDEO=raising, FAULT="raise"))
    # each process exits 0 (an error exit would make torchrun stop the other); the last one's line says it all
    assert result.returncode == 0, result.stderr[-2000:]
    assert "5 of 5 videos finished so far by all processes: 3 ok, 0 partial, 2 failed" in result.stderr
    assert "[rank 0]" in result.stderr and "[rank 1]" in result.stderr
    rows_one, rows_two = read_index(one), read_index(tmp_path / "two")
    assert [(r["video"], r["output"], r["status"] if r["video"] != raising else "failed") for r in rows_one] == \
        [(r["video"], r["output"], r["status"]) for r in rows_two]
    assert [r["error"] for r in rows_two if r["video"] == raising] == ["RuntimeError: injected fault"]
    for row in rows_two:
        if row["status"] == "ok":
            header_1, columns_1, p_1 = predictions(one / row["output"])
            header_2, columns_2, p_2 = predictions(tmp_path / "two" / row["output"])
            assert (header_1, columns_1) == (header_2, columns_2)
            np.testing.assert_allclose(p_1, p_2, atol=2e-6)
    assert not [p for p in os.listdir(tmp_path / "two") if ".partial-" in p or p.startswith(".running-")]


@pytest.mark.slow
def test_a_killed_rank_loses_only_its_video_and_a_restart_completes_the_corpus(corpus, tmp_path):
    """A rank dies (SIGKILL) in the middle of a video; torchrun stops the other rank (SIGTERM: it stops cleanly) and,
    with --max-restarts 1, starts both again: the finished videos are skipped, the one whose process died comes
    last in its share, and the corpus completes."""
    root, checkpoint = corpus
    (tmp_path / "faulty_predict.py").write_text(FAULTY_PREDICT)
    dying = str(root / "videos" / "b" / "clip.mp4")
    result = torchrun(str(tmp_path / "faulty_predict.py"),
                      ["--videos", str(root / "videos"), str(root / "list.txt"), "--checkpoint", str(checkpoint),
                       "--output_dir", str(tmp_path / "out"), *FLAGS],
                      dict(FAULT_VIDEO=dying, FAULT="die", FAULT_ONCE=str(tmp_path / "died")), "--max-restarts", "1")
    assert (tmp_path / "died").exists() and "1 whose process died earlier come last" in result.stderr
    assert result.returncode == 0, result.stderr[-3000:]
    assert "5 of 5 videos finished so far by all processes: 4 ok, 0 partial, 1 failed" in result.stderr
    rows = read_index(tmp_path / "out")
    assert [r["status"] for r in rows] == ["ok", "ok", "failed", "ok", "ok"] and rows[1]["video"] == dying
    assert not [p for p in os.listdir(tmp_path / "out") if ".partial-" in p or p.startswith(".running-")]


def finished_folders(output_dir):
    return [p for p in os.listdir(output_dir) if not p.startswith(".") and (output_dir / p).is_dir()] \
        if output_dir.exists() else []


def signal_after_a_new_video(signal_number, command, output_dir):
    """Run `command`; once it has finished a video more than there were and started the next, send it
    `signal_number`."""
    before = len(finished_folders(output_dir))
    process = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 900  # a signal on time-out would stop the run before any video (a loaded machine)
    while len(finished_folders(output_dir)) == before or not list(output_dir.glob(".running-*")):
        if time.time() > deadline or process.poll() is not None:
            process.kill()
            pytest.fail(f"no new video finished and the next begun ({process.wait()}): {process.stderr.read()[-2000:]}")
        time.sleep(0.01)
    process.send_signal(signal_number)
    return process.wait(), process.stderr.read()


@pytest.mark.slow
def test_stopped_and_killed_runs_resume(corpus, first_run, tmp_path):
    """SIGTERM stops the corpus as Ctrl-C does: nothing half-written, no marker; a kill (SIGKILL) leaves the marker
    of the video in progress, which the next run tries after the others."""
    root, checkpoint = corpus
    output_dir = tmp_path / "killed"
    command = [sys.executable, "predict.py", "--videos", str(root / "videos"), str(root / "list.txt"),
               "--checkpoint", str(checkpoint), "--output_dir", str(output_dir), *FLAGS]
    code, err = signal_after_a_new_video(signal.SIGTERM, command, output_dir)
    assert code == 130 and err.strip().splitlines()[-1] == "interrupted: nothing half-written is left"
    stopped = finished_folders(output_dir)
    assert 1 <= len(stopped) < 4 and not [p for p in os.listdir(output_dir) if ".partial-" in p or ".running-" in p]
    assert len(read_index(output_dir)) == len(stopped)  # the index has a row for each finished video
    code, _ = signal_after_a_new_video(signal.SIGKILL, command, output_dir)
    finished = finished_folders(output_dir)
    assert code == -signal.SIGKILL and len(stopped) < len(finished) < 4  # killed in the middle of the corpus
    assert all((output_dir / p / "summary.json").exists() for p in finished)  # no half folder counts as done
    (marker,) = [p for p in os.listdir(output_dir) if p.startswith(".running-")]
    result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert result.returncode == 1 and result.stderr.count("done before, skipped") == len(finished)
    last = [line for line in result.stderr.splitlines() if line.startswith("[rank 0] video 5/5")]
    assert output_name(last[0].split()[4].rstrip(":")) == marker.removeprefix(".running-")
    assert not [p for p in os.listdir(output_dir) if ".partial-" in p or p.startswith(".running-")]
    one, _ = first_run
    for row in read_index(one):
        if row["status"] == "ok":
            np.testing.assert_allclose(predictions(output_dir / row["output"])[2], predictions(one / row["output"])[2],
                                       atol=2e-6)


@pytest.fixture
def small_corpus(corpus, tmp_path):
    """Copies of five corpus videos (the test may break them), their list, and the checkpoint."""
    root, checkpoint = corpus
    videos = []
    for number, source in enumerate([*(root / "videos").glob("*/clip.mp4"), root / "more" / "extra.mp4"] * 2):
        if len(videos) < 5:
            videos.append(tmp_path / "videos" / f"{number}.mp4")
            videos[-1].parent.mkdir(exist_ok=True)
            shutil.copy(source, videos[-1])
    return videos, checkpoint


@pytest.mark.slow
def test_any_exception_fails_its_video_only(small_corpus, tmp_path, monkeypatch, capsys):
    """An exception from the model, from the writer (a full disk), and from decoding on the second open (the file
    replaced after it was probed) each fail their video with a one-line reason naming the exception's type; the
    others are analysed; a rerun without the faults completes the corpus."""
    videos, checkpoint = small_corpus
    model_fault, writer_fault, reopen_fault = (str(v) for v in videos[:3])
    current = {}
    analyze, classify, add, probe = (pipeline.Analyzer.analyze, VideoModel.classify_and_embed, PredictionWriter.add,
                                     pipeline.probe_video)

    def analyze_noting_the_video(self, video, *args, **kwargs):
        current["video"] = video
        return analyze(self, video, *args, **kwargs)

    def faulty_classify(self, clips):
        if current["video"] == model_fault:
            raise RuntimeError("CUDA error: an illegal memory access was encountered\nmore lines")
        return classify(self, clips)

    def faulty_add(self, window, probabilities):
        if current["video"] == writer_fault:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return add(self, window, probabilities)

    def probe_then_replace(video):
        info = probe(video)
        if video == reopen_fault:
            Path(video).write_text("replaced by a text file after it was probed")
        return info

    for owner, name, fault in ((pipeline.Analyzer, "analyze", analyze_noting_the_video),
                               (VideoModel, "classify_and_embed", faulty_classify),
                               (PredictionWriter, "add", faulty_add),
                               (pipeline, "probe_video", probe_then_replace)):
        monkeypatch.setattr(owner, name, fault)
    arguments = ["--videos", *map(str, videos), "--checkpoint", str(checkpoint), "--output_dir",
                 str(tmp_path / "out"), *FLAGS]
    assert predict.run(arguments) == 1
    rows = read_index(tmp_path / "out")
    assert [r["status"] for r in rows] == ["failed", "failed", "failed", "ok", "ok"]
    assert rows[0]["error"] == "RuntimeError: CUDA error: an illegal memory access was encountered more lines"
    assert rows[1]["error"] == "OSError: [Errno 28] No space left on device"
    assert rows[2]["error"].startswith(f"VideoError: {reopen_fault}: cannot be opened as a video")
    assert "5 videos: 2 ok, 0 partial, 3 failed" in capsys.readouterr().err
    assert sorted(p for p in os.listdir(tmp_path / "out") if p.startswith(".")) == []  # staging folders removed
    shutil.copy(videos[3], reopen_fault)
    monkeypatch.undo()
    assert predict.run(arguments) == 0
    assert [r["status"] for r in read_index(tmp_path / "out")] == ["ok"] * 5
    assert capsys.readouterr().err.count("done before, skipped") == 2


@pytest.fixture
def small_disk(tmp_path):
    """A 1 MiB tmpfs (the test is skipped where mounting is not allowed)."""
    disk = tmp_path / "disk"
    disk.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(disk)], capture_output=True)
    if mounted.returncode != 0:
        pytest.skip("cannot mount a tmpfs here; test_any_exception_fails_its_video_only injects ENOSPC instead")
    try:
        yield disk
    finally:
        subprocess.run(["umount", str(disk)], check=True)


@pytest.mark.slow
def test_a_full_disk_fails_the_video_and_gives_its_space_back(checkpoint, small_disk, tmp_path):
    """The first video's annotated video does not fit on the disk: that video fails, its staging folder is removed,
    and the second video, which would not fit beside the first one's leftovers, is analysed."""
    noise = np.random.default_rng(0).integers(0, 256, (60, 240, 320, 3), dtype=np.uint8)
    write_cv2_video(tmp_path / "a_big.mp4", list(noise), 10)
    write_cv2_video(tmp_path / "b_small.mp4", list(noise[:12, :96, :96]), 10)
    code = predict.run(["--videos", str(tmp_path / "a_big.mp4"), str(tmp_path / "b_small.mp4"), "--checkpoint",
                        str(checkpoint), "--output_dir", str(small_disk / "out"), "--landmark_weights", "random",
                        "--device", "cpu", "--no_detect", "--window_seconds", "0.6"])
    rows = read_index(small_disk / "out")
    assert code == 1 and [r["status"] for r in rows] == ["failed", "ok"]
    assert rows[0]["error"].startswith("OSError: [Errno 28] No space left on device: ")
    assert os.path.getsize(small_disk / "out" / rows[1]["output"] / "annotated.mp4") > 0
    assert not [p for p in os.listdir(small_disk / "out") if p.startswith(".")]

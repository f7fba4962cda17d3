"""A stop (SIGINT, SIGTERM) is a request honoured at safe points: the handlers only set a flag, a second signal
exits at once, the pipeline's worker thread ends with the work, and a corpus run stopped at many points (under
CPU load, at random delays, right after a video finished, with and without the annotated video, with a bad file in
the corpus) always ends with exit 130, no video finished after the signal, nothing half-written and a clean stderr.

The stress test makes STOP_STRESS_STOPS stops (default 6: every pair of when, which signal and annotated or not;
12: every combination) beside STOP_STRESS_BUSY_LOOPS busy CPU loops (default 2); docs/PREDICT.md records a run
of 40."""
import os
import random
import signal
import subprocess
import sys
import threading
import time

import pytest

from inference.pipeline import _prefetch
from scripts.make_synthetic_video import write_video
from tests.helpers import ROOT, tiny_checkpoint
from utils import stop

STOPS = int(os.environ.get("STOP_STRESS_STOPS", "6"))
BUSY_LOOPS = int(os.environ.get("STOP_STRESS_BUSY_LOOPS", "2"))
FLAGS = ("--landmark_weights", "random", "--device", "cpu", "--no_detect", "--source_fps", "8")
FORBIDDEN = ("FATAL", "Exception ignored", "Traceback")


def test_a_signal_only_requests_a_stop_and_a_second_one_exits_at_once():
    script = ("import os, signal, sys, time\n"
              "from utils import stop\n"
              "with stop.stop_on_signals():\n"
              "    os.kill(os.getpid(), signal.SIGTERM)\n"
              "    print(stop.requested(), flush=True)\n"
              "    try:\n"
              "        stop.stop_point()\n"
              "    except stop.Stopped:\n"
              "        print('stopped at the safe point', flush=True)\n"
              "    os.kill(os.getpid(), signal.SIGINT)\n"
              "    time.sleep(5)\n"
              "    print('not reached', flush=True)\n")
    result = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert result.returncode == stop.EXIT_STOPPED
    assert result.stdout.splitlines() == ["True", "stopped at the safe point"]
    assert "SIGTERM: stopping at the next safe point" in result.stderr and "stopped at once" in result.stderr


def test_handlers_are_restored_and_the_flag_cleared():
    before = signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)
    with stop.stop_on_signals():
        stop.request()
        with pytest.raises(stop.Stopped):
            stop.stop_point()
    assert (signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)) == before and not stop.requested()
    stop.stop_point()


def test_the_worker_thread_ends_with_its_consumer():
    """The consumer fails mid-way: the worker, still producing, is told and joined before the error surfaces."""
    abandoned, produced = threading.Event(), []

    def endless():
        while not abandoned.is_set():
            produced.append(len(produced))
            yield produced[-1]

    with pytest.raises(RuntimeError, match="consumer failed"):
        for item in _prefetch(endless(), 2, abandoned):
            if item == 5:
                raise RuntimeError("consumer failed")
    assert not [t for t in threading.enumerate() if t.name == "decode-detect"]
    count = len(produced)
    time.sleep(0.2)
    assert len(produced) == count


@pytest.fixture(scope="module")
def stress_corpus(tmp_path_factory):
    root = tmp_path_factory.mktemp("stress")
    (root / "videos").mkdir()
    expressions = ("happy,sad", "angry,fear", "surprise,happy", "disgust,neutral", "sad,angry", "fear,surprise")
    for k, shown in enumerate(expressions):
        write_video(root / "videos" / f"v{k}.mp4", shown.split(","), 6, 64, 8.0, k)
    (root / "videos" / "v2_notes.mp4").write_text("not a video")
    return root, tiny_checkpoint(root / "ckpt.pth")


@pytest.fixture(scope="module")
def busy_cores():
    loops = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(BUSY_LOOPS)]
    yield
    for loop in loops:
        loop.kill()
        loop.wait()


def finished(output_dir):
    return {p for p in os.listdir(output_dir) if not p.startswith(".") and (output_dir / p).is_dir()} \
        if output_dir.exists() else set()


def running(output_dir):
    return {p.name.removeprefix(".running-") for p in output_dir.glob(".running-*")} if output_dir.exists() else set()


def catches_sigterm(pid):
    """Whether the process has a SIGTERM handler (its stop handlers are installed; a signal before them, during
    the interpreter's imports, gets the default action)."""
    with open(f"/proc/{pid}/status") as status:
        caught = next(int(line.split()[1], 16) for line in status if line.startswith("SigCgt:"))
    return bool(caught >> (signal.SIGTERM - 1) & 1)


def wait_until(condition, process, seconds=600):
    deadline = time.time() + seconds
    while not condition() and process.poll() is None and time.time() < deadline:
        time.sleep(0.005)


def stop_once(root, checkpoint, output_dir, when, delay, signal_number, annotated):
    """One corpus run into a fresh `output_dir`, sent `signal_number` at `when`; returns (exit code, stderr, the
    videos finished or in progress at the signal, those finished at the end)."""
    command = [sys.executable, "predict.py", "--videos", str(root / "videos"), "--checkpoint", str(checkpoint),
               "--output_dir", str(output_dir), *FLAGS, *(() if annotated else ("--no_video",))]
    process = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    wait_until(lambda: catches_sigterm(process.pid), process)
    if when == "after a video":  # a video more finished and the next begun
        wait_until(lambda: finished(output_dir) and running(output_dir), process)
    elif when == "in the corpus":
        wait_until(lambda: running(output_dir), process)
    time.sleep(delay)
    at_signal = running(output_dir)
    at_signal |= finished(output_dir) | running(output_dir)  # markers first: a video between the two is seen
    process.send_signal(signal_number)
    code = process.wait(timeout=120)
    return code, process.stderr.read(), at_signal, finished(output_dir)


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore:LandmarkFeatures")
def test_a_corpus_stopped_anywhere_exits_130_with_nothing_lost(stress_corpus, busy_cores, tmp_path):
    root, checkpoint = stress_corpus
    rng = random.Random(0)
    points = [("at start-up", lambda: rng.uniform(0.0, 2.0)), ("in the corpus", lambda: rng.uniform(0.0, 1.5)),
              ("after a video", lambda: 0.0)]
    for k in range(STOPS):
        when, delay = points[k % 3][0], points[k % 3][1]()
        signal_number, annotated = (signal.SIGTERM, signal.SIGINT)[k % 2], (k // 3 + k // 6) % 2 == 0
        where = f"stop {k + 1}/{STOPS}: {signal.Signals(signal_number).name} {when} + {delay:.2f} s, " \
                f"annotated video {annotated}"
        output_dir = tmp_path / f"out{k}"
        code, err, at_signal, at_end = stop_once(root, checkpoint, output_dir, when, delay, signal_number, annotated)
        assert code == stop.EXIT_STOPPED, f"{where}: exit {code}\n{err[-3000:]}"
        assert not [word for word in FORBIDDEN if word in err], f"{where}:\n{err[-3000:]}"
        assert err.strip().splitlines()[-1] == "interrupted: nothing half-written is left", f"{where}:\n{err[-3000:]}"
        assert at_end <= at_signal, f"{where}: {sorted(at_end - at_signal)} finished after the signal"
        if output_dir.exists():
            assert not [p for p in os.listdir(output_dir) if ".partial-" in p or p.startswith(".running-")], where
            index = output_dir / "index.csv"
            rows = index.read_text().splitlines()[1:] if index.exists() else []
            assert {r.split(",")[1] for r in rows if ",ok," in r} == at_end, where  # a row per finished video

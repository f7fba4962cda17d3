"""Several machines, exercised on one: two torchrun agents on 127.0.0.1 (`--nnodes 2 --node_rank 0|1 --rdzv_backend
c10d --rdzv_endpoint 127.0.0.1:PORT --nproc_per_node 1`, gloo on the CPU). Training equals one agent with two
processes (same ranks, same seeds: the same weights and log); `--eval --dist_eval` equals one process; a corpus
into one shared folder analyses every video once; with the rendezvous store hosted apart from both agents
(scripts/rendezvous_store.py), either agent killed mid-corpus leaves the other to finish its share, and a rerun
completes the rest."""
import csv
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from scripts.make_synthetic_video import write_video
from tests.helpers import ENV, ROOT, free_port, main_in_process, read_log, run_main, tiny_checkpoint, write_tiny_dfew

pytestmark = pytest.mark.slow
# torchrun sets OMP_NUM_THREADS=1 only for several processes per agent: one thread each, as the agent with two has
ONE_THREAD = {"CUDA_VISIBLE_DEVICES": "", "OMP_NUM_THREADS": "1"}
CORPUS_FLAGS = ("--landmark_weights", "random", "--device", "cpu", "--no_detect", "--source_fps", "8", "--no_video")


def start_agents(script_args, logs, port=None):
    """Two torchrun agents (node ranks 0 and 1) of `script_args`, each in its own process group, their output in
    the files `logs`. With `port`, the rendezvous store listening there is joined by both as clients; without,
    the agent that binds a free port first hosts it."""
    rendezvous = ("--rdzv_backend", "c10d", "--rdzv_endpoint", f"127.0.0.1:{port or free_port()}",
                  *(("--rdzv_conf", "is_host=false") if port else ()))
    agents = []
    for node_rank, log in enumerate(logs):
        with open(log, "w") as handle:
            agents.append(subprocess.Popen(
                [sys.executable, "-m", "torch.distributed.run", "--nnodes", "2", "--node_rank", str(node_rank),
                 "--nproc_per_node", "1", *rendezvous, *script_args], cwd=ROOT,
                env={**ENV, **ONE_THREAD, "LOGLEVEL": "INFO"}, stdout=handle, stderr=subprocess.STDOUT,
                start_new_session=True))
    return agents


def kill_node(agent):
    """SIGKILL an agent and its processes, as when its machine dies (torchrun starts each process in a session of
    its own: the agent's process group holds only the agent)."""
    tasks = Path(f"/proc/{agent.pid}/task").iterdir()
    workers = [int(pid) for task in tasks for pid in (task / "children").read_text().split()]
    for pid in (agent.pid, *workers):
        os.killpg(pid, signal.SIGKILL)
    agent.wait()


@pytest.fixture
def rendezvous_store():
    """scripts/rendezvous_store.py serving on a free port (as a third machine would); yields the port."""
    port = free_port()
    store = subprocess.Popen([sys.executable, "scripts/rendezvous_store.py", "--port", str(port)], cwd=ROOT,
                             env=ENV, stdout=subprocess.PIPE, text=True)
    assert store.stdout.readline().startswith(f"rendezvous store serving on port {port} "), store.wait()
    yield port
    store.terminate()
    assert store.wait(timeout=60) == 0


def run_agents(script_args, tmp_path):
    logs = [tmp_path / f"agent{k}.log" for k in (0, 1)]
    agents = start_agents(script_args, logs)
    codes = [agent.wait(timeout=900) for agent in agents]
    assert codes == [0, 0], "\n".join(log.read_text()[-3000:] for log in logs)
    return [log.read_text() for log in logs]


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    return write_tiny_dfew(tmp_path_factory.mktemp("synthetic"), size=64)


def train_args(data, output_dir, *extra):
    return ["main_finetune.py", "--model", "s2d_tiny_patch8_64", "--data_set", "DFEW",
            "--data_path", str(data / "clips"), "--train_label_path", str(data / "splits" / "train_set_1.csv"),
            "--test_label_path", str(data / "splits" / "test_set_1.csv"), "--input_size", "64",
            "--short_side_size", "64", "--num_frames", "4", "--batch_size", "2", "--num_sample", "1",
            "--epochs", "1", "--warmup_epochs", "1", "--lr", "1e-3", "--test_num_segment", "2",
            "--test_num_crop", "1", "--num_workers", "0", "--device", "cpu", "--landmark_weights", "random",
            "--dist_eval", "--output_dir", str(output_dir), "--print_freq", "2", *extra]


def test_two_agents_train_and_evaluate_as_one_machine(data, tmp_path):
    run_agents(train_args(data, tmp_path / "two"), tmp_path)
    run_main(train_args(data, tmp_path / "one")[1:],
             launcher=(sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
                       "main_finetune.py"))
    two, one = read_log(tmp_path / "two"), read_log(tmp_path / "one")
    assert len(two) == 2 and two == one  # the epoch's line and the final test's, equal to the last digit
    weights = [torch.load(tmp_path / name / "checkpoint.pth", weights_only=False)["model"] for name in ("two", "one")]
    assert weights[0].keys() == weights[1].keys()
    assert all(torch.equal(weights[0][k], weights[1][k]) for k in weights[0])

    checkpoint = str(tmp_path / "two" / "checkpoint.pth")
    evaluation = ["--eval", "--resume", checkpoint, "--test_num_crop", "2"]
    run_agents(train_args(data, tmp_path / "eval_two", *evaluation), tmp_path)
    main_in_process(train_args(data, tmp_path / "eval_one", *evaluation)[1:])
    two, one = read_log(tmp_path / "eval_two")[-1], read_log(tmp_path / "eval_one")[-1]
    assert (two["final_uar"], two["final_war"], two["final_num_clips"]) == pytest.approx(
        (one["final_uar"], one["final_war"], one["final_num_clips"]))
    assert sorted((tmp_path / "eval_two" / "pred.csv").read_text().splitlines()) == \
        sorted((tmp_path / "eval_one" / "pred.csv").read_text().splitlines())


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    root = tmp_path_factory.mktemp("corpus")
    (root / "videos").mkdir()
    for k, shown in enumerate(("happy,sad", "angry,fear", "surprise,happy", "disgust,neutral", "sad,angry",
                               "fear,surprise")):
        write_video(root / "videos" / f"v{k}.mp4", shown.split(","), 6, 64, 8.0, k)
    (root / "videos" / "v9_notes.mp4").write_text("not a video")
    return root, tiny_checkpoint(root / "ckpt.pth")


def corpus_args(root, checkpoint, output_dir):
    return ["predict.py", "--videos", str(root / "videos"), "--checkpoint", str(checkpoint),
            "--output_dir", str(output_dir), *CORPUS_FLAGS]


def read_index(output_dir):
    with open(output_dir / "index.csv", newline="") as handle:
        return list(csv.DictReader(handle))


def analysed(logs):
    """The videos each process analysed, from its progress lines."""
    return [line.split(": ")[0].split()[-1] for log in logs for line in log.splitlines()
            if "] video " in line and "done before, skipped" not in line]


def test_two_agents_analyse_a_shared_corpus_once(corpus, tmp_path):
    root, checkpoint = corpus
    logs = run_agents(corpus_args(root, checkpoint, tmp_path / "out"), tmp_path)
    videos = sorted(str(p) for p in (root / "videos").glob("*.mp4"))
    assert sorted(analysed(logs)) == videos  # every video, each by one process
    rows = read_index(tmp_path / "out")
    assert sorted(r["video"] for r in rows) == videos and len({r["output"] for r in rows}) == len(videos)
    assert [r["status"] for r in rows].count("failed") == 1 and [r["status"] for r in rows].count("ok") == 6
    assert not [p for p in os.listdir(tmp_path / "out") if ".partial-" in p or p.startswith(".running-")]


@pytest.mark.parametrize("killed", (0, 1))
def test_a_killed_agent_leaves_the_other_its_share_and_a_rerun_completes(corpus, rendezvous_store, killed, tmp_path):
    root, checkpoint = corpus
    output_dir = tmp_path / "out"
    logs = [tmp_path / f"agent{k}.log" for k in (0, 1)]
    agents = start_agents(corpus_args(root, checkpoint, output_dir), logs, port=rendezvous_store)
    survivor = 1 - killed
    deadline = time.time() + 600
    while "] video 1/" not in logs[killed].read_text():  # at once: the other may start seconds later
        assert time.time() < deadline and all(a.poll() is None for a in agents), logs[killed].read_text()[-3000:]
        time.sleep(0.05)
    kill_node(agents[killed])
    # the other finishes its share, and its agent, still up, waits at torchrun's exit barrier (up to 300 s)
    while "worker group successfully finished" not in logs[survivor].read_text():
        assert time.time() < deadline and agents[survivor].poll() is None, logs[survivor].read_text()[-3000:]
        time.sleep(0.1)
    os.killpg(agents[survivor].pid, signal.SIGKILL)  # its process is done; its agent would wait up to 300 s more
    agents[survivor].wait()
    survivor_log = logs[survivor].read_text()
    assert "share done" in survivor_log, survivor_log[-3000:]
    finished_by_survivor = len([line for line in survivor_log.splitlines() if "] video " in line])
    rows = read_index(output_dir)
    assert len(rows) < 7 and len(rows) >= finished_by_survivor + 1  # the killed one finished its first video, not all
    rerun = subprocess.run([sys.executable, *corpus_args(root, checkpoint, output_dir)], cwd=ROOT,
                           env={**ENV, "CUDA_VISIBLE_DEVICES": ""}, capture_output=True, text=True, timeout=600)
    assert rerun.returncode == 1, rerun.stderr[-3000:]  # the bad file failed
    assert rerun.stderr.count("done before, skipped") >= finished_by_survivor
    rows = read_index(output_dir)
    assert len(rows) == 7 and [r["status"] for r in rows].count("ok") == 6
    assert not [p for p in os.listdir(output_dir) if ".partial-" in p or p.startswith(".running-")]

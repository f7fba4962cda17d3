"""main_finetune.py end to end on tiny synthetic data (CPU): training, outputs, exact resume, --eval,
torchrun with two processes, non-finite loss."""
import argparse
import csv
import re
import shutil
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import torch

import main_finetune
from datasets import build_dataset
from datasets.synthetic import write_synthetic_dfew
from engine.metrics import classification_metrics
from engine.sdl import SDL
from engine.state import rng_state, set_rng_state
from engine.train import NonFiniteLossError, train_one_epoch
from models.landmark import LandmarkFeatures
from models.registry import build_model
from tests.helpers import ENV, ROOT, main_in_process, read_log, run_main, write_tiny_dfew
from utils.progress import ProgressLogger

EPOCHS = 2


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    return write_tiny_dfew(tmp_path_factory.mktemp("synthetic"), size=64)


def tiny_args(data, output_dir, *extra):
    return ["--model", "s2d_tiny_patch8_64", "--data_set", "DFEW", "--data_path", str(data / "clips"),
            "--train_label_path", str(data / "splits" / "train_set_1.csv"),
            "--test_label_path", str(data / "splits" / "test_set_1.csv"),
            "--input_size", "64", "--short_side_size", "64", "--num_frames", "4", "--batch_size", "4",
            "--num_sample", "1", "--epochs", str(EPOCHS), "--warmup_epochs", "1", "--lr", "1e-3",
            "--test_num_segment", "2", "--test_num_crop", "1", "--num_workers", "0", "--device", "cpu",
            "--landmark_weights", "random", "--model_ema", "--model_ema_decay", "0.9",
            "--output_dir", str(output_dir), "--print_freq", "2", *extra]


@pytest.fixture(scope="module")
def trained(data, tmp_path_factory):
    output_dir = tmp_path_factory.mktemp("run")
    result = run_main(tiny_args(data, output_dir))
    return output_dir, result.stdout


@pytest.mark.slow
def test_training_writes_logs_predictions_and_checkpoints(data, trained):
    output_dir, stdout = trained
    log = read_log(output_dir)
    assert [entry["epoch"] for entry in log[:-1]] == list(range(EPOCHS))
    assert all(entry["val_on_test_split"] for entry in log[:-1])
    final = log[-1]
    for tag, name in (("last", "pred.csv"), ("best", "pred_best.csv")):  # the metrics follow from the predictions
        labels, preds = np.array([[int(v) for v in row.split(",")[1:]]
                                  for row in (output_dir / name).read_text().splitlines()[1:]]).T
        recalls = [np.mean(preds[labels == c] == c) for c in np.unique(labels)]
        assert final[f"final_{tag}_war"] == pytest.approx(100 * np.mean(preds == labels))
        assert final[f"final_{tag}_uar"] == pytest.approx(100 * np.mean(recalls))
    test_ids = (data / "splits" / "test_set_1.csv").read_text().splitlines()[1:]
    rows = (output_dir / "pred.csv").read_text().splitlines()
    assert rows[0] == "id,label,pred"
    assert sorted(r.split(",")[0] for r in rows[1:]) == sorted(line.split(",")[0] for line in test_ids)
    preds = [r.split(",") for r in rows[1:]]
    war = 100.0 * sum(label == pred for _, label, pred in preds) / len(preds)
    assert final["final_last_war"] == pytest.approx(war)
    for name in ("checkpoint.pth", "checkpoint-best.pth", *(f"checkpoint-{e}.pth" for e in range(EPOCHS)),
                 "confusion_matrix_last.png", "confusion_matrix_best.txt", "pred_best.csv"):
        assert (output_dir / name).is_file(), name
    checkpoint = torch.load(output_dir / "checkpoint.pth", weights_only=False)
    assert {"model", "optimizer", "epoch", "scaler", "args"} <= set(checkpoint)
    assert checkpoint["epoch"] == EPOCHS - 1 and isinstance(checkpoint["args"], argparse.Namespace)
    assert torch.load(output_dir / "checkpoint-best.pth", weights_only=False)["epoch"] == "best"
    assert "eta" in stdout and "clips/s" in stdout
    assert not list(output_dir.glob("*.tmp*")), "temporary checkpoint files left behind"


def kill_after_first_epoch(args, output_dir, signal_number=signal.SIGKILL):
    """Start main_finetune.py and send it `signal_number` once its first epoch is logged, before its end; returns
    its exit code and stderr."""
    process = subprocess.Popen([sys.executable, "main_finetune.py", *args], cwd=ROOT,
                               env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 300
    while not ((output_dir / "log.txt").exists() and (output_dir / "log.txt").read_text().strip()):
        assert process.poll() is None and time.time() < deadline, "run ended before its first epoch was logged"
        time.sleep(0.05)
    process.send_signal(signal_number)
    code, err = process.wait(), process.stderr.read()
    assert len(read_log(output_dir)) < EPOCHS, "the run was not interrupted before its end"
    return code, err


@pytest.mark.slow
def test_a_stopped_run_saves_nothing_partial(data, tmp_path):
    """SIGTERM in the second epoch: the run stops before its next step, exit 130, and the checkpoints are those of
    the epochs logged."""
    output_dir = tmp_path / "stopped"
    code, err = kill_after_first_epoch(tiny_args(data, output_dir), output_dir, signal.SIGTERM)
    assert code == 130 and "Traceback" not in err and err.strip().splitlines()[-1].startswith("interrupted")
    logged = [entry["epoch"] for entry in read_log(output_dir)]
    assert torch.load(output_dir / "checkpoint.pth", weights_only=False)["epoch"] == logged[-1]
    assert not list(output_dir.glob("*.tmp*")) and not list(output_dir.glob("pred*.csv"))


@pytest.mark.slow
def test_killed_run_resumes_to_the_same_result(data, trained, tmp_path):
    reference_dir, _ = trained
    output_dir = tmp_path / "interrupted"
    kill_after_first_epoch(tiny_args(data, output_dir), output_dir)
    run_main(tiny_args(data, output_dir))
    final, reference = read_log(output_dir)[-1], read_log(reference_dir)[-1]
    assert final == reference
    resumed = torch.load(output_dir / "checkpoint.pth", weights_only=False)
    uninterrupted = torch.load(reference_dir / "checkpoint.pth", weights_only=False)
    for entry in ("model", "model_ema"):
        assert resumed[entry].keys() == uninterrupted[entry].keys()
        for key in resumed[entry]:
            assert torch.equal(resumed[entry][key], uninterrupted[entry][key]), (entry, key)


def _original_layout_checkpoint(trained, tmp_path):
    reference_dir, _ = trained
    model = torch.load(reference_dir / "checkpoint-best.pth", weights_only=False)["model"]
    path = tmp_path / "s2d_fold1_best.pth"
    torch.save({"model": model, "epoch": "best", "optimizer": None,
                "args": argparse.Namespace(model="s2d_tiny_patch8_64", nb_classes=7)}, path)
    return path


@pytest.mark.slow
def test_eval_of_an_original_layout_checkpoint(data, trained, tmp_path):
    checkpoint = _original_layout_checkpoint(trained, tmp_path)
    output_dir = tmp_path / "eval"
    main_in_process(tiny_args(data, output_dir, "--eval", "--finetune", str(checkpoint)))
    final = read_log(output_dir)[-1]
    reference = read_log(trained[0])[-1]
    assert final["final_uar"] == pytest.approx(reference["final_best_uar"])
    assert final["final_war"] == pytest.approx(reference["final_best_war"])
    assert (output_dir / "pred.csv").read_text() == (trained[0] / "pred_best.csv").read_text()


@pytest.mark.slow
def test_eval_of_every_view_equals_distinct_views_and_int8_eval_runs(data, trained, tmp_path, capsys):
    """--no_dedup_views computes the 2 identical views of every 4-frame clip: same pred.csv, metrics and
    confusion matrix as the de-duplicated test of the run; --cpu_int8 evaluates the same checkpoint."""
    checkpoint = _original_layout_checkpoint(trained, tmp_path)
    full_dir, int8_dir = tmp_path / "all_views", tmp_path / "int8"
    main_in_process(tiny_args(data, full_dir, "--eval", "--finetune", str(checkpoint), "--no_dedup_views",
                              "--save_feature"))
    assert "test views:" not in capsys.readouterr().out
    final, reference = read_log(full_dir)[-1], read_log(trained[0])[-1]
    for key in ("uar", "war", "confusion_matrix", "class_acc", "acc5", "macro_f1"):
        assert final[f"final_{key}"] == reference[f"final_best_{key}"], key
    assert (full_dir / "pred.csv").read_text() == (trained[0] / "pred_best.csv").read_text()
    assert (full_dir / "confusion_matrix_eval.txt").read_text() == \
        (trained[0] / "confusion_matrix_best.txt").read_text()
    features = torch.load(full_dir / "features_eval.pt")
    test_clips = len((data / "splits" / "test_set_1.csv").read_text().splitlines()) - 1
    assert len(features["views"]) == features["features"].shape[0] == 2 * test_clips

    main_in_process(tiny_args(data, int8_dir, "--eval", "--finetune", str(checkpoint), "--cpu_int8",
                              "--save_feature"))
    assert f"{test_clips} test clips, {2 * test_clips} views, {test_clips} distinct" in capsys.readouterr().out
    fp32, int8 = ({tuple(view): logits.softmax(-1) for view, logits in zip(saved["views"], saved["logits"])}
                  for saved in (features, torch.load(int8_dir / "features_eval.pt")))
    assert fp32.keys() == int8.keys()
    difference = max(float((fp32[view] - int8[view]).abs().max()) for view in fp32)
    assert 0 < difference < 0.05  # int8 really ran, and stays close to fp32 (as predict.py's int8 test)
    with pytest.raises(SystemExit, match="--cpu_int8: expected --eval"):  # exit status 1, the message on stderr
        main_in_process(tiny_args(data, tmp_path / "refused", "--cpu_int8"))


@pytest.mark.slow
def test_torchrun_two_processes_match_single_process_eval(data, tmp_path):
    output_dir = tmp_path / "ddp"
    args = tiny_args(data, output_dir, "--dist_eval", "--test_num_crop", "2")  # 4 identical views, 1 computed
    args[args.index("--epochs") + 1] = "1"
    args[args.index("--batch_size") + 1] = "2"
    run_main(args, launcher=(sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
                             "main_finetune.py"))
    test_clips = len((data / "splits" / "test_set_1.csv").read_text().splitlines()) - 1
    assert test_clips % 2 == 1, "an odd test set makes the distributed sampler pad with a repeated clip"
    ddp_final = read_log(output_dir)[-1]
    assert ddp_final["final_last_num_clips"] == test_clips

    eval_dir = tmp_path / "single"
    main_in_process(tiny_args(data, eval_dir, "--eval", "--resume", str(output_dir / "checkpoint.pth"),
                              "--test_num_crop", "2", "--no_dedup_views"))
    single = read_log(eval_dir)[-1]
    assert single["final_uar"] == pytest.approx(ddp_final["final_last_uar"])
    assert single["final_war"] == pytest.approx(ddp_final["final_last_war"])
    assert sorted((eval_dir / "pred.csv").read_text().splitlines()[1:]) == \
        sorted((output_dir / "pred.csv").read_text().splitlines()[1:])


@pytest.mark.slow
def test_a_tiny_model_learns_a_few_synthetic_clips(tmp_path, capsys):
    """main_finetune end to end, in process, from scratch: 6 clips of 3 well-separated synthetic expressions
    (happy, neutral, surprise), trained and tested on the same clips, end well above the 33% of chance."""
    write_synthetic_dfew(tmp_path, clips_per_class=5, num_frames=2, size=64, folds=1, seed=0)
    rows = (tmp_path / "splits" / "train_set_1.csv").read_text().splitlines()[1:]
    chosen = [row for label in ("0", "2", "4") for row in [r for r in rows if r.endswith(f",{label}")][:2]]
    (tmp_path / "clips.csv").write_text("video_name,label\n" + "\n".join(chosen) + "\n")
    (tmp_path / "val.csv").write_text("video_name,label\n" + "\n".join(chosen[::2]) + "\n")
    args = main_finetune.get_args_parser().parse_args([
        "--model", "s2d_tiny_patch8_64", "--data_path", str(tmp_path / "clips"),
        "--train_label_path", str(tmp_path / "clips.csv"), "--test_label_path", str(tmp_path / "clips.csv"),
        "--val_label_path", str(tmp_path / "val.csv"), "--input_size", "64", "--short_side_size", "64",
        "--num_frames", "2", "--batch_size", "3", "--num_sample", "1", "--epochs", "25", "--warmup_epochs", "1",
        "--lr", "2e-3", "--weight_decay", "0", "--ban_mixup", "--smoothing", "0", "--reprob", "0", "--aa", "none",
        "--dropout_ratio", "0", "--test_num_segment", "1", "--test_num_crop", "1", "--num_workers", "0",
        "--device", "cpu", "--landmark_weights", "random", "--print_freq", "100"])
    final = main_finetune.main(args)
    capsys.readouterr()
    assert final["final_last_num_clips"] == 6
    assert final["final_last_uar"] >= 80.0 and final["final_last_war"] >= 80.0


def test_random_validation_windows_come_back_with_the_checkpointed_rng_states(tmp_path):
    """Validation draws a random window from clips longer than --num_frames, in DataLoader workers seeded from the
    global torch RNG (as the original's): restoring the RNG states a checkpoint holds draws the same windows."""
    write_synthetic_dfew(tmp_path, clips_per_class=5, num_frames=8, size=64, folds=1, seed=0)
    args = main_finetune.get_args_parser().parse_args([
        "--model", "s2d_tiny_patch8_64", "--data_path", str(tmp_path / "clips"), "--input_size", "64",
        "--short_side_size", "64", "--num_frames", "2", "--num_workers", "2", "--device", "cpu",
        "--val_label_path", str(tmp_path / "splits" / "test_set_1.csv")])
    dataset, _ = build_dataset(is_train=False, test_mode=False, args=args)
    loader = main_finetune._eval_loader(dataset, None, 4, args)

    def windows():
        return torch.cat([videos.flatten(1) for videos, *_ in loader])

    torch.manual_seed(0)
    state = rng_state()
    first, second = windows(), windows()
    set_rng_state(state)
    assert torch.equal(windows(), first) and not torch.equal(first, second)


def test_pred_csv_keeps_clip_ids_with_commas_and_quotes(tmp_path):
    labels, scores = np.array([0, 1, 2]), np.eye(3)[[0, 2, 2]]
    clip_ids = ["scene,1/0001", 'say "hi"/02', "plain"]
    main_finetune.report_test(argparse.Namespace(output_dir=str(tmp_path), data_set="FRAMES"), "eval",
                              classification_metrics(labels, scores, 3), (clip_ids, labels, scores), ["a", "b", "c"])
    with open(tmp_path / "pred.csv", newline="") as handle:
        assert list(csv.reader(handle)) == [["id", "label", "pred"], ["scene,1/0001", "0", "0"],
                                            ['say "hi"/02', "1", "2"], ["plain", "2", "2"]]


def test_non_finite_loss_stops_with_epoch_and_step():
    model = build_model("s2d_tiny_patch8_112", num_frames=2, num_classes=3)
    landmark = LandmarkFeatures(None)
    loader = torch.utils.data.DataLoader(
        [(torch.randn(3, 2, 112, 112), 0, i) for i in range(4)], batch_size=2)
    optimizer = torch.optim.AdamW(model.parameters())
    calls = []

    def criterion(logits, targets):
        calls.append(1)
        loss = torch.nn.functional.cross_entropy(logits, targets)
        return loss * float("nan") if len(calls) == 2 else loss

    with pytest.raises(NonFiniteLossError, match="epoch 3, step 1"):
        train_one_epoch(model, landmark, criterion, loader, optimizer, torch.device("cpu"), 3, steps_per_epoch=2,
                        update_freq=1, lr_schedule=[1e-4] * 10, wd_schedule=[0.05] * 10,
                        progress=ProgressLogger("test"))


@pytest.mark.parametrize("epoch, adds_loss, refreshes", [(20, False, False), (21, True, True), (22, True, False)])
def test_sdl_term_and_queue_refresh_follow_the_epoch_schedule(epoch, adds_loss, refreshes):
    torch.manual_seed(0)
    model = build_model("s2d_tiny_patch8_112", num_frames=2, num_classes=3)
    sdl = SDL(num_classes=3, dim=model.embed_dim, queue_size=4)
    queue_before = sdl.queue.clone()
    loader = torch.utils.data.DataLoader([(torch.randn(3, 2, 112, 112), i % 3, i) for i in range(2)], batch_size=2)
    progress = ProgressLogger("test")
    train_one_epoch(model, LandmarkFeatures(None), torch.nn.functional.cross_entropy, loader,
                    torch.optim.AdamW(model.parameters()), torch.device("cpu"), epoch, steps_per_epoch=1,
                    update_freq=1, lr_schedule=[1e-4] * 30, wd_schedule=[0.05] * 30, sdl=sdl, sdl_update_freq=7,
                    progress=progress)
    assert ("sdl_loss" in progress.meters) == adds_loss
    assert (not torch.equal(sdl.queue, queue_before)) == refreshes
    if refreshes:  # labels 0 and 1 each pushed one feature; class 2 untouched
        assert torch.equal(sdl.queue[2], queue_before[2])
        assert torch.equal(sdl.queue[0, :-1], queue_before[0, 1:])


def test_sdl_queues_are_refreshed_from_the_unmixed_batch():
    torch.manual_seed(0)
    model = build_model("s2d_tiny_patch8_112", num_frames=2, num_classes=3, head_dropout=0.0)
    sdl = SDL(num_classes=3, dim=model.embed_dim, queue_size=4)
    loader = torch.utils.data.DataLoader([(torch.randn(3, 2, 112, 112), i, i) for i in range(2)], batch_size=2)

    def blank_mixup(x, target):  # mixes in place, as timm's Mixup does
        return x.zero_(), torch.nn.functional.one_hot(target, 3).float()

    train_one_epoch(model, LandmarkFeatures(None), lambda logits, t: -(t * logits.log_softmax(-1)).sum(-1).mean(),
                    loader, torch.optim.SGD(model.parameters(), lr=0.0), torch.device("cpu"), 21,
                    steps_per_epoch=1, update_freq=1, lr_schedule=[0.0] * 30, wd_schedule=[0.0] * 30,
                    mixup_fn=blank_mixup, sdl=sdl, sdl_update_freq=7, progress=ProgressLogger("test"))
    # two different clean clips give different features; two blanked ones would give equal features
    assert not torch.allclose(sdl.queue[0, -1], sdl.queue[1, -1])


@pytest.fixture(scope="module")
def bad_data(data, tmp_path_factory):
    """Small splits of the synthetic clips, one truncated frame in a train and in a test clip:
    train.csv (8 clips, one bad), train_clean.csv (4 good clips), test.csv (3 clips, one bad)."""
    root = tmp_path_factory.mktemp("bad_data")
    shutil.copytree(data / "clips", root / "clips")
    train_rows = (data / "splits" / "train_set_1.csv").read_text().splitlines()[1:9]
    test_rows = (data / "splits" / "test_set_1.csv").read_text().splitlines()[1:4]
    bad = {"train": train_rows[2].split(",")[0], "test": test_rows[1].split(",")[0]}
    for clip_id in bad.values():
        frame = sorted((root / "clips" / clip_id).iterdir())[1]
        frame.write_bytes(frame.read_bytes()[:200])
    for name, rows in (("train", train_rows), ("train_clean", train_rows[4:]), ("test", test_rows)):
        (root / f"{name}.csv").write_text("\n".join(["video_name,label", *rows]) + "\n")
    return root, bad


def small_args(root, output_dir, *extra):
    args = tiny_args(root, output_dir, *extra)
    args[args.index("--train_label_path") + 1] = str(root / "train.csv")
    args[args.index("--test_label_path") + 1] = str(root / "test.csv")
    return args


@pytest.mark.slow
def test_corrupt_test_frame_is_a_one_line_error_and_keeps_the_checkpoint(bad_data, tmp_path):
    root, bad = bad_data
    output_dir = tmp_path / "fails"
    args = small_args(root, output_dir, "--val_label_path", str(root / "train_clean.csv"))
    args[args.index("--train_label_path") + 1] = str(root / "train_clean.csv")
    args[args.index("--epochs") + 1] = "1"
    result = run_main(args, check=False)
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    last_line = result.stderr.strip().splitlines()[-1]
    assert re.fullmatch(rf"error: .*test\.csv:3: clip '{bad['test']}': cannot decode frame "
                        rf"'.*{bad['test']}/\d+\.jpg': .*; pass --skip_bad_clips .*", last_line), last_line
    assert torch.load(output_dir / "checkpoint.pth", weights_only=False)["epoch"] == 0


def skip_args(root, output_dir):
    return small_args(root, output_dir, "--skip_bad_clips", "--max_bad_fraction", "0.4")


@pytest.fixture(scope="module")
def skipped(bad_data, tmp_path_factory):
    root, _ = bad_data
    output_dir = tmp_path_factory.mktemp("skip")
    result = run_main(skip_args(root, output_dir))
    return output_dir, result.stdout


@pytest.mark.slow
def test_skip_bad_clips_finishes_and_reports_them(bad_data, skipped):
    (_, bad), (output_dir, stdout) = bad_data, skipped
    log = read_log(output_dir)
    assert [entry["train_skipped_clips"] for entry in log[:-1]] == [[bad["train"]]] * EPOCHS
    assert [entry["train_replaced_samples"] for entry in log[:-1]] == [1] * EPOCHS  # its one sample per epoch
    assert log[0]["val_skipped_clips"] == [bad["test"]]
    final = log[-1]
    assert set(final["skipped_clips"]) == {"train", "val", "test"}
    assert list(final["skipped_clips"]["train"]) == [bad["train"]]
    assert final["final_last_skipped_clips"] == final["final_best_skipped_clips"] == [bad["test"]]
    assert final["final_last_num_clips"] == 2
    predicted = [row.split(",")[0] for row in (output_dir / "pred.csv").read_text().splitlines()[1:]]
    assert len(predicted) == 2 and bad["test"] not in predicted
    assert re.search(r"\[last\] 2 clips: UAR [\d.]+%  WAR [\d.]+% \[1 clip\(s\) skipped", stdout)
    assert f"{bad['train']}: " in stdout.split("--skip_bad_clips: 1 train clip(s) skipped")[1]


@pytest.mark.slow
def test_killed_run_with_a_bad_clip_resumes_to_the_same_result(bad_data, skipped, tmp_path):
    (root, _), (reference_dir, _) = bad_data, skipped
    output_dir = tmp_path / "interrupted"
    kill_after_first_epoch(skip_args(root, output_dir), output_dir)
    run_main(skip_args(root, output_dir))
    assert read_log(output_dir)[-1] == read_log(reference_dir)[-1]
    resumed = torch.load(output_dir / "checkpoint.pth", weights_only=False)
    uninterrupted = torch.load(reference_dir / "checkpoint.pth", weights_only=False)
    assert resumed["bad_clips"] == uninterrupted["bad_clips"]
    for key in resumed["model"]:
        assert torch.equal(resumed["model"][key], uninterrupted["model"][key]), key


def test_check_data_flag_checks_the_given_splits(bad_data, tmp_path, capsys):
    from datasets.check import check_data_of_args
    from main_finetune import get_args_parser
    root, bad = bad_data
    args = get_args_parser().parse_args(small_args(root, tmp_path, "--check_data", "--num_workers", "2"))
    report = check_data_of_args(args)
    assert sorted(row[2] for row in report) == sorted(bad.values())
    rows = (tmp_path / "bad_clips.csv").read_text().splitlines()
    assert rows[0] == "label_file,line,clip,label,reason,bad_frames" and len(rows) == 3
    assert "frames/s per process" in capsys.readouterr().out

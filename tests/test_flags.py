"""Training that fails in the first second: every invalid flag of main_finetune.py is a one-line error at start-up,
before any data is read, and the recipes name every missing input before torchrun starts."""
import os
import subprocess
import sys

import pytest

from main_finetune import get_args_parser, invalid_flags
from tests.helpers import ENV, ROOT


@pytest.fixture
def valid(tmp_path):
    """Valid flags for a tiny run: the data folder and label files exist (empty: nothing may read them)."""
    (tmp_path / "clips").mkdir()
    for name in ("train.csv", "test.csv", "checkpoint.pth"):
        (tmp_path / name).write_text("")
    return ["--model", "s2d_tiny_patch8_112", "--input_size", "112", "--short_side_size", "112",
            "--data_path", str(tmp_path / "clips"), "--train_label_path", str(tmp_path / "train.csv"),
            "--test_label_path", str(tmp_path / "test.csv"), "--landmark_weights", "random"]


def problems(flags):
    return invalid_flags(get_args_parser().parse_args(flags))


def test_valid_flags_pass(valid, tmp_path):
    assert problems(valid) == []
    assert problems(valid + ["--eval", "--finetune", str(tmp_path / "checkpoint.pth"), "--cpu_int8"]) == []
    assert problems(valid + ["--sdl", "--K", "16", "--aa", "none", "--opt", "lookahead_adamw", "--ban_mixup",
                             "--batch_size", "3", "--num_sample", "1", "--cutmix_minmax", "0.2", "0.8"]) == []


INVALID = [  # (flags, the error line, or lines when two flags are wrong)
    (["--save_ckpt_freq", "0"], "--save_ckpt_freq 0: expected a positive integer"),
    (["--update_freq", "0"], "--update_freq 0: expected a positive integer"),
    (["--print_freq", "0"], "--print_freq 0: expected a positive integer"),
    (["--epochs", "0"], "--epochs 0: expected a positive integer"),
    (["--sdl", "--sdl_update_freq", "0"], "--sdl_update_freq 0: expected a positive integer"),
    (["--batch_size", "-2"], "--batch_size -2: expected a positive integer"),
    (["--num_frames", "0"], "--num_frames 0: expected a positive integer"),
    (["--sampling_rate", "-1"], "--sampling_rate -1: expected a positive integer"),
    (["--test_num_segment", "0"], "--test_num_segment 0: expected a positive integer"),
    (["--test_num_crop", "0"], "--test_num_crop 0: expected a positive integer"),
    (["--num_sample", "0"], "--num_sample 0: expected a positive integer"),
    (["--recount", "0"], "--recount 0: expected a positive integer"),
    (["--qs", "0", "--K", "0"], ["--qs 0: expected a positive integer", "--K 0: expected an integer in [1, --qs 0]"]),
    (["--K", "17"], "--K 17: expected an integer in [1, --qs 16]"),
    (["--short_side_size", "100"], "--short_side_size 100: expected at least --input_size 112"),
    (["--input_size", "224", "--short_side_size", "224"],
     "--input_size 224: expected 112, the input size of --model s2d_tiny_patch8_112"),
    (["--model", "s2d_huge"], "--model s2d_huge: expected one of s2d_base_patch16_224, s2d_image_base_patch16_224, "
                              "s2d_image_tiny_patch8_112, s2d_image_tiny_patch8_64, s2d_tiny_patch8_112, "
                              "s2d_tiny_patch8_64"),
    (["--data_set", "RAFDB"], "--model s2d_tiny_patch8_112: expected an image model: --data_set RAFDB holds images; "
                              "train an image model (s2d_image_*) on it"),
    (["--nb_classes", "0"], "--nb_classes 0: expected a positive integer"),
    (["--scale_factor", "0.1"], "--scale_factor 0.1: expected a ratio r > 0 with int(192 x r) a multiple of 8 "
                                "(the temporal attention's heads)"),
    (["--dropout_ratio", "1"], "--dropout_ratio 1.0: expected a number in [0, 1)"),
    (["--drop_path", "-0.1"], "--drop_path -0.1: expected a number in [0, 1)"),
    (["--model_ema_decay", "1.5"], "--model_ema_decay 1.5: expected a number in [0, 1]"),
    (["--opt", "adamx"], "--opt adamx: expected a timm optimizer name such as adamw, sgd or momentum"),
    (["--opt_eps", "0"], "--opt_eps 0.0: expected a positive number"),
    (["--opt_betas", "0.9"], "--opt_betas 0.9: expected two numbers in [0, 1)"),
    (["--momentum", "-0.5"], "--momentum -0.5: expected a number in [0, 1]"),
    (["--clip_grad", "0"], "--clip_grad 0.0: expected a positive gradient norm"),
    (["--weight_decay", "-0.05"], "--weight_decay -0.05: expected a non-negative number"),
    (["--weight_decay_end", "-1"], "--weight_decay_end -1.0: expected a non-negative number"),
    (["--lr", "0"], "--lr 0.0: expected a positive number"),
    (["--min_lr=-1e-8"], "--min_lr -1e-08: expected a non-negative number"),
    (["--warmup_lr", "-1"], "--warmup_lr -1.0: expected a non-negative number"),
    (["--color_jitter", "-0.4"], "--color_jitter -0.4: expected a non-negative number"),
    (["--mixup", "-1"], "--mixup -1.0: expected a non-negative number"),
    (["--cutmix", "-1"], "--cutmix -1.0: expected a non-negative number"),
    (["--layer_decay", "0"], "--layer_decay 0.0: expected a number in (0, 1]"),
    (["--warmup_epochs", "-1"], "--warmup_epochs -1: expected a non-negative integer"),
    (["--warmup_steps", "-2"], "--warmup_steps -2: expected -1 (use --warmup_epochs) or a non-negative integer"),
    (["--aa", "rand-q3"], "--aa rand-q3: expected none or a RandAugment policy such as rand-m7-n4-mstd0.5-inc1"),
    (["--smoothing", "1"], "--smoothing 1.0: expected a number in [0, 1)"),
    (["--train_interpolation", "cubic"],
     "--train_interpolation cubic: expected one of bicubic, bilinear, lanczos, hamming, random"),
    (["--reprob", "1.5"], "--reprob 1.5: expected a number in [0, 1]"),
    (["--remode", "pixels"], "--remode pixels: expected one of const, rand, pixel"),
    (["--cutmix_minmax", "0.8", "0.2"], "--cutmix_minmax 0.8 0.2: expected two ratios 0 < min < max <= 1"),
    (["--mixup_prob", "2"], "--mixup_prob 2.0: expected a number in [0, 1]"),
    (["--mixup_switch_prob", "-1"], "--mixup_switch_prob -1.0: expected a number in [0, 1]"),
    (["--mixup_mode", "pairs"], "--mixup_mode pairs: expected one of batch, pair, elem"),
    (["--batch_size", "3", "--num_sample", "1"],
     "--batch_size 3: expected an even number of clips per step (--batch_size x --num_sample) for mixup/cutmix, "
     "or --ban_mixup"),
    (["--max_bad_fraction", "1.5"], "--max_bad_fraction 1.5: expected a number in [0, 1]"),
    (["--num_workers", "-1"], "--num_workers -1: expected a non-negative integer"),
    (["--seed", "-1"], "--seed -1: expected an integer in [0, 2**31)"),
    (["--data_path", "missing"], "--data_path missing: expected an existing folder of clip frames (docs/DATA.md)"),
    (["--train_label_path", ""], "--train_label_path '': expected an existing annotation CSV file (docs/DATA.md)"),
    (["--val_label_path", "missing.csv"],
     "--val_label_path missing.csv: expected an existing annotation CSV file (docs/DATA.md)"),
    (["--landmark_weights", "missing.pth"],
     "--landmark_weights missing.pth: expected the MobileFaceNet weights file (ckpts/README.md) or random"),
    (["--finetune", "missing.pth"], "--finetune missing.pth: expected an existing checkpoint file"),
    (["--resume", "missing.pth"], "--resume missing.pth: expected an existing checkpoint file"),
    (["--eval"], "--eval: expected the checkpoint to evaluate, given with --resume or --finetune"),
    (["--cpu_int8"], "--cpu_int8: expected --eval: int8 is for evaluating on the CPU"),
    (["--nb_classes", "5"], "DFEW has 7 classes, but --nb_classes is 5"),
]


@pytest.mark.parametrize("flags, error", INVALID, ids=[" ".join(flags) for flags, _ in INVALID])
def test_each_invalid_flag_is_one_line_naming_flag_value_and_expectation(valid, flags, error):
    assert problems(valid + flags) == (error if isinstance(error, list) else [error])


def test_file_flags_name_what_is_missing(valid, tmp_path):
    (tmp_path / "a_file").write_text("")
    for flag in ("--output_dir", "--log_dir"):
        assert problems(valid + [flag, str(tmp_path / "a_file")]) == [f"{flag} {tmp_path / 'a_file'}: expected a "
                                                                      "folder, not a file"]
    assert problems(valid + ["--check_data", "--train_label_path", "", "--test_label_path", ""]) == [
        "--check_data: expected at least one of --train_label_path, --val_label_path, --test_label_path"]


@pytest.mark.slow
def test_main_stops_before_reading_any_data(valid):
    """The label files are empty, so reading them would fail with another message: both invalid flags are
    reported, one line each, and nothing else runs."""
    result = subprocess.run([sys.executable, "main_finetune.py", *valid, "--update_freq", "0", "--epochs", "0"],
                            cwd=ROOT, env=ENV, capture_output=True, text=True, timeout=300)
    assert result.returncode == 1 and result.stdout == ""
    assert result.stderr.splitlines() == ["error: --epochs 0: expected a positive integer",
                                          "error: --update_freq 0: expected a positive integer"]


def recipe(script, tmp_path, **env):
    return subprocess.run(["bash", f"scripts/{script}"], cwd=ROOT, capture_output=True, text=True, timeout=120,
                          env={**ENV, "NUM_GPUS": "1", "CHECK_ONLY": "1", "FOLDS": "1",
                               "OUTPUT_ROOT": str(tmp_path / "out"), **env})


def test_recipe_names_every_missing_input_and_where_to_get_it(tmp_path):
    missing = {name: str(tmp_path / name) for name in ("frames", "labels", "static.pth", "landmarks.pth.tar")}
    result = recipe("ft_dfew.sh", tmp_path, DATA_PATH=missing["frames"], LABEL_ROOT=missing["labels"],
                    PRETRAINED=missing["static.pth"], LANDMARK_WEIGHTS=missing["landmarks.pth.tar"])
    assert result.returncode == 1 and "Traceback" not in result.stderr
    lines = result.stderr.splitlines()
    assert lines[0] == "error: the DFEW recipe cannot start; missing:" and len(lines) == 6
    assert f"frame folder {missing['frames']} (DATA_PATH)" in lines[1] and "docs/DATA.md" in lines[1]
    assert f"annotation file {missing['labels']}/train(single-labeled)/train_set_1.csv" in lines[2]
    assert f"annotation file {missing['labels']}/test(single-labeled)/test_set_1.csv" in lines[3]
    assert f"static checkpoint {missing['static.pth']}" in lines[4] and "scripts/download_checkpoints.py" in lines[4]
    assert f"MobileFaceNet weights {missing['landmarks.pth.tar']}" in lines[5] and "ckpts/README.md" in lines[5]
    assert not (tmp_path / "out").exists()


def test_recipe_with_every_input_present_passes_the_check(tmp_path):
    labels = tmp_path / "labels"
    for split in ("train", "test"):
        os.makedirs(labels / f"{split}(single-labeled)")
        (labels / f"{split}(single-labeled)" / f"{split}_set_1.csv").write_text("")
    (tmp_path / "frames").mkdir()
    (tmp_path / "static.pth").write_text("")
    result = recipe("ft_dfew.sh", tmp_path, DATA_PATH=str(tmp_path / "frames"), LABEL_ROOT=str(labels),
                    PRETRAINED=str(tmp_path / "static.pth"), LANDMARK_WEIGHTS="random")
    assert result.returncode == 0 and result.stderr == "" and not (tmp_path / "out").exists()

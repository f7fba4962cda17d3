"""EVAL=1: the released checkpoints evaluated with the published protocol, and the paper's table beside the measured
one. Stand-in "released" checkpoints (tiny models) of several plausible names lie in a fake Hugging Face cache used
offline; the data are synthetic clips in each data set's layout. Also: the README's table is the one in
engine/published.py."""
import csv
import json
import os
import re
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from engine.published import DATA_SETS, PUBLISHED, published_mean
from models.released import released_candidates, released_file
from tests.helpers import ENV, ROOT, fake_hub_cache, main_in_process, tiny_checkpoint

MODEL, NUM_FRAMES, SIZE = "s2d_tiny_patch8_64", 4, 64
LAYOUTS = {  # data set -> (frame folder, fold -> test annotation file, header, classes, frame extension)
    "DFEW": ("DFEW/Clip/clip_224x224_16f",
             {k: f"DFEW/EmoLabel_DataSplit/test(single-labeled)/test_set_{k}.csv" for k in (2, 4)},
             "video_name,label", 7, ".jpg"),
    "FERV39K": ("FERV39K/2_ClipsforFaceCrop", {None: "FERV39K/Annotation/test.csv"}, "path,id", 7, ".jpg"),
    "MAFW": ("MAFW/data/frames/frames_crop_align_224",
             {k: f"MAFW/anno/single/no_caption/set_{k}/test.csv" for k in (2, 4)}, "video_name,labels", 11, ".png"),
}
RELEASED = {  # names of several plausible forms
    "DFEW/DFEW_fold2_checkpoint-best.pth": ("DFEW", 2), "DFEW/dfew-set4.pth": ("DFEW", 4),
    "FERV39K/ferv39k_best.pth": ("FERV39K", None),
    "MAFW_split_2.pth": ("MAFW", 2), "mafw/MAFW_set4_model.pt": ("MAFW", 4),
}
LOCAL = "mafw/MAFW_set4_model.pt"  # in CKPTS_DIR (ckpts/) only
EVAL_ENV = dict(EVAL="1", FOLDS="4", MODEL=MODEL, NUM_FRAMES=str(NUM_FRAMES), INPUT_SIZE=str(SIZE),
                NUM_WORKERS="0", NUM_GPUS="1", LANDMARK_WEIGHTS="random", HF_HUB_OFFLINE="1",
                CUDA_VISIBLE_DEVICES="")


def write_data(root):
    rng = np.random.default_rng(0)
    for data_set, (frames, tests, header, classes, ext) in LAYOUTS.items():
        for fold, test in tests.items():
            rows = []
            for k in range(6):
                clip = f"{'Scene/Happy/' if data_set == 'FERV39K' else ''}{fold or 0}{k:04d}"
                (root / frames / clip).mkdir(parents=True)
                for t in range(6):
                    pixels = rng.integers(0, 256, (SIZE, SIZE, 3), dtype=np.uint8)
                    Image.fromarray(pixels).save(root / frames / clip / f"{t + 1:05d}{ext}")
                rows.append(f"{clip},{rng.integers(classes)}")
            (root / test).parent.mkdir(parents=True, exist_ok=True)
            (root / test).write_text("\n".join([header, *rows]) + "\n")


@pytest.fixture(scope="module")
def released(tmp_path_factory):
    """Data in each data set's layout (data/), a released checkpoint in ckpts/ and the others in a fake Hugging Face
    cache."""
    root = tmp_path_factory.mktemp("released")
    write_data(root / "data")
    files = {"pretrain-AffectNet-7.pth": b"static"}
    for name, (data_set, _) in RELEASED.items():
        path = tiny_checkpoint(root / "made.pth", num_frames=NUM_FRAMES, data_set=data_set,
                               num_classes=LAYOUTS[data_set][3])
        if name == LOCAL:
            (root / "ckpts" / name).parent.mkdir(parents=True)
            path.rename(root / "ckpts" / name)
        else:
            files[name] = path.read_bytes()
    fake_hub_cache(root / "hub", files)
    return root


def run_eval(root, script="run.sh", **env):
    """`EVAL=1 bash <script>` of this repository with the data, local checkpoints and hub cache of `root`."""
    paths = dict(OUTPUT_ROOT=str(root / "out"), HF_HUB_CACHE=str(root / "hub"), DATA_ROOT=str(root / "data"),
                 CKPTS_DIR=str(root / "ckpts"))
    return subprocess.run(["bash", script], cwd=ROOT, env={**ENV, **EVAL_ENV, **paths, **env}, capture_output=True,
                          text=True, timeout=1800)


def table_rows(path):
    with open(path, newline="") as handle:
        return list(csv.DictReader(handle))


def test_released_file_rule_reads_plausible_names():
    files = [*RELEASED, "pretrain-AffectNet-7.pth", "DFEW/dfew_fold1_oversampling.pth", "README.md"]
    for name, (data_set, fold) in RELEASED.items():
        assert released_file(files, data_set, fold, oversampled=False) == name
    assert released_file(files, "DFEW", 1, oversampled=True) == "DFEW/dfew_fold1_oversampling.pth"
    assert released_candidates(files, "DFEW", 3) == []
    with pytest.raises(ValueError, match="DFEW fold 3 .w/o oversampling.: expected one checkpoint in the repository, "
                                         "found none"):
        released_file(files, "DFEW", 3, oversampled=False)


def test_the_readme_table_is_the_published_one():
    text = (ROOT / "README.md").read_text()
    section = text.split("## Published results")[1].split("\n## ")[0]
    cells = {row[0]: row[1:] for row in (
        [c.strip() for c in line.strip("|").split("|")] for line in section.splitlines() if line.startswith("| "))}
    for oversampled, column in ((False, 0), (True, 1)):
        for data_set in DATA_SETS:
            folds = PUBLISHED[oversampled][data_set]
            numbers = [tuple(map(float, pair.split("/"))) for pair in re.split(r",\s*", cells[
                f"{data_set} fold 1..5" if len(folds) > 1 else data_set][column])]
            assert numbers == list(folds.values())
            if len(folds) > 1:
                mean = tuple(map(float, cells[f"{data_set} mean"][column].split("/")))
                assert mean == published_mean(data_set, oversampled)
    assert published_mean("DFEW", True) == (65.45, 75.01) and published_mean("MAFW", False) == (41.87, 57.37)


def test_the_released_checkpoint_scripts_start_without_pytorch():
    """evaluate_released.py (run several times by each EVAL=1 recipe) and download_checkpoints.py start in a
    fraction of a second: their modules of the project do not import PyTorch."""
    check = "import sys, models.released, engine.published; print(sorted({'torch', 'timm'} & set(sys.modules)))"
    result = subprocess.run([sys.executable, "-c", check], cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0 and result.stdout.strip() == "[]", result.stdout + result.stderr


@pytest.mark.slow
def test_eval_run_prints_the_table_equal_to_direct_evaluations_and_reruns_skip(released, tmp_path):
    result = run_eval(released)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    out = released / "out" / "released"
    assert "| DFEW | 4 |" in result.stdout and (out / "published_vs_measured.md").read_text() in result.stdout
    rows = {(r["data_set"], r["fold"]): r for r in table_rows(out / "published_vs_measured.csv")}
    assert len(rows) == 13 and rows[("DFEW", "1")]["measured_uar"] == rows[("DFEW", "mean")]["measured_uar"] == ""
    # the published protocol run by hand (main_finetune in this process) on one fold of each layout gives the
    # same numbers
    files = {name: next((released / "hub").rglob(os.path.basename(name))) for name in RELEASED if name != LOCAL}
    files[LOCAL] = released / "ckpts" / LOCAL
    for (data_set, fold), name in ((("DFEW", 4), "DFEW/dfew-set4.pth"), (("FERV39K", None), "FERV39K/ferv39k_best.pth"),
                                   (("MAFW", 4), LOCAL)):
        frames, tests, _, classes, _ = LAYOUTS[data_set]
        direct = tmp_path / f"{data_set}{fold}"
        main_in_process([
            "--eval", "--finetune", str(files[name]), "--model", MODEL, "--data_set", data_set,
            "--nb_classes", str(classes), "--data_path", str(released / "data" / frames),
            "--test_label_path", str(released / "data" / tests[fold]), "--landmark_weights", "random",
            "--batch_size", "16", "--input_size", str(SIZE), "--short_side_size", str(SIZE),
            "--num_frames", str(NUM_FRAMES), "--sampling_rate", "1", "--test_num_segment", "2",
            "--test_num_crop", "2", "--num_workers", "0", "--device", "cpu", "--output_dir", str(direct)])
        log = [json.loads(line) for line in (direct / "log.txt").read_text().splitlines()][-1]
        row = rows[(data_set, "all" if fold is None else str(fold))]
        assert (float(row["measured_uar"]), float(row["measured_war"])) == (round(log["final_uar"], 2),
                                                                            round(log["final_war"], 2))
        paper = PUBLISHED[False][data_set][fold]
        assert float(row["diff_uar"]) == round(round(log["final_uar"], 2) - paper[0], 2)
    assert sum(r["measured_uar"] != "" for r in rows.values()) == 3 and "MAFW_set4_model.pt" in result.stdout
    again = run_eval(released, "scripts/ft_dfew.sh")
    assert again.returncode == 0 and again.stdout.count("done already") == 1 and "==>" not in again.stdout


def test_missing_inputs_are_named_before_anything_runs(released):
    result = run_eval(released, FOLDS="3 4", LANDMARK_WEIGHTS=str(released / "no_mobilefacenet.pth.tar"),
                      OUTPUT_ROOT=str(released / "missing"))
    assert result.returncode == 1 and "==>" not in result.stdout and not (released / "missing").exists()
    errors = result.stderr
    assert "error: the DFEW evaluation cannot start; missing:" in errors
    assert "DFEW fold 3 (w/o oversampling): expected one checkpoint in cyinen/S2D, found none" in errors
    assert "test_set_3.csv (LABEL_ROOT)" in errors and "MobileFaceNet weights" in errors
    assert "MAFW fold 3 (w/o oversampling)" in errors  # run.sh checks every recipe first


@pytest.mark.slow
def test_oversampling_says_where_no_checkpoint_is_released(released):
    result = run_eval(released, "scripts/ft_ferv39k.sh", OVERSAMPLE="1", OUTPUT_ROOT=str(released / "os"))
    assert result.returncode == 0, result.stderr[-3000:]
    assert "note: FERV39K: no w/ oversampling checkpoint is released (none in " in result.stdout
    assert "==>" not in result.stdout
    assert "Published (w/ oversampling) vs measured" in (released / "os" / "released" /
                                                          "published_vs_measured_oversampled.md").read_text()

"""Frame-folder datasets: sampling, views, items, annotation validation (tiny clips in tmp_path)."""
import csv
import random
import warnings
from argparse import Namespace

import numpy as np
import pytest
import torch
from PIL import Image
from timm.data import IMAGENET_DEFAULT_MEAN, IMAGENET_DEFAULT_STD
from torch.utils.data import DataLoader

from datasets import BadClipError, build_dataset, multiple_samples_collate
from datasets.bad_clips import TooManyBadClipsError
from datasets.sampling import all_frame_indices, train_frame_indices
from engine.bad_clips import watch_bad_clips

SIZE = 16


def frame_value(k):
    return 7 * k + 3


def write_clip(root, clip_id, num_frames, ext=".png", size=SIZE):
    """Frame k is a constant image of grey value frame_value(k), so a frame can be identified."""
    folder = root / clip_id
    folder.mkdir(parents=True)
    for k in range(num_frames):
        Image.fromarray(np.full((size, size, 3), frame_value(k), np.uint8)).save(folder / f"{k:04d}{ext}")


def write_csv(path, rows, header="video_name,label"):
    path.write_text("\n".join(([header] if header else []) + rows) + "\n")
    return path


def frame_ids(video):
    """Frame index shown at every time step of a normalised (3, T, H, W) constant-frame video."""
    grey = video[0, :, 0, 0] * IMAGENET_DEFAULT_STD[0] + IMAGENET_DEFAULT_MEAN[0]
    return [round(((g * 255).item() - 3) / 7) for g in grey]


def make_args(tmp_path, csv_path, **overrides):
    args = dict(data_set="MAFW", data_path=str(tmp_path), train_label_path=str(csv_path),
                val_label_path=str(csv_path), test_label_path=str(csv_path), nb_classes=None,
                num_frames=16, sampling_rate=1, input_size=SIZE, short_side_size=SIZE,
                test_num_segment=2, test_num_crop=2, num_sample=1, aa="rand-m7-n4-mstd0.5-inc1",
                train_interpolation="bicubic", reprob=0.25, remode="pixel", recount=1, skip_bad_clips=False,
                max_bad_fraction=0.01)
    return Namespace(**{**args, **overrides})


def spec_short_clip_indices(n, rate, clip_len=16):
    kept = [min(int(x), n - 1) for x in np.linspace(0, n, num=n // rate)]
    return kept + [n - 1] * (clip_len - len(kept))


@pytest.mark.parametrize("n, rate", [(5, 1), (10, 1), (16, 1), (20, 2), (32, 2)])
def test_train_indices_short_and_exact_clips(n, rate):
    assert train_frame_indices(n, 16, rate).tolist() == spec_short_clip_indices(n, rate)


def test_train_indices_of_16_frames_are_all_frames():
    assert train_frame_indices(16, 16, 1).tolist() == list(range(16))


@pytest.mark.parametrize("n, rate", [(17, 1), (40, 1), (50, 2)])
def test_train_indices_long_clips_are_a_random_window(n, rate):
    np.random.seed(0)
    starts = set()
    for _ in range(200):
        indices = train_frame_indices(n, 16, rate)
        start = indices[0]
        end = start + 16 * rate
        assert 16 * rate <= end < n
        expected = np.clip(np.linspace(start, end, num=16), start, end - 1).astype(int)
        assert indices.tolist() == expected.tolist()
        starts.add(int(start))
    assert starts == set(range(n - 16 * rate))


def test_all_frame_indices_pad_with_last():
    assert all_frame_indices(5, 16, 1) == [0, 1, 2, 3, 4] + [4] * 11
    assert all_frame_indices(40, 16, 2) == list(range(0, 40, 2))


def test_test_views_hold_the_specified_frames(tmp_path):
    write_clip(tmp_path, "a", 20)
    write_clip(tmp_path, "b", 7)
    csv_path = write_csv(tmp_path / "test.csv", ["a,1", "b,10"])
    dataset, nb_classes = build_dataset(False, True, make_args(tmp_path, csv_path, test_num_segment=3))
    assert nb_classes == 11 and len(dataset) == 2 * 3 * 2
    temporal_step = (20 - 16) / (3 - 1)
    seen = set()
    for i in range(len(dataset)):
        video, label, clip_id, segment, crop = dataset[i]
        assert video.shape == (3, 16, SIZE, SIZE)
        seen.add((clip_id, segment, crop))
        if clip_id == "a":
            start = int(segment * temporal_step)
            assert label == 1 and frame_ids(video) == list(range(start, start + 16))
        else:
            assert label == 10 and frame_ids(video) == list(range(7)) + [6] * 9
    assert seen == {(c, s, p) for c in "ab" for s in range(3) for p in range(2)}


def test_validation_draws_a_random_window_by_the_training_rule_and_crops_the_centre(tmp_path):
    folder = tmp_path / "g"
    folder.mkdir()
    ramp = np.tile(np.arange(SIZE, dtype=np.uint8)[None, :, None] * 10, (SIZE, 1, 3))
    for k in range(20):
        Image.fromarray(ramp + k).save(folder / f"{k:02d}.png")
    write_clip(tmp_path, "short", 3)
    csv_path = write_csv(tmp_path / "val.csv", ["g,0", "short,4"])
    dataset, _ = build_dataset(False, False, make_args(tmp_path, csv_path, input_size=10))
    mean, std = IMAGENET_DEFAULT_MEAN[0], IMAGENET_DEFAULT_STD[0]
    starts = set()
    for seed in range(12):
        np.random.seed(seed)
        window = train_frame_indices(20, 16, 1)
        np.random.seed(seed)
        video, label, clip_id = dataset[0]
        assert (label, clip_id, video.shape) == (0, "g", (3, 16, 10, 10))
        expected = torch.stack([(torch.from_numpy(ramp[3:13, 3:13, 0] + k).float() / 255 - mean) / std
                                for k in window])
        torch.testing.assert_close(video[0], expected)
        starts.add(int(window[0]))
    assert len(starts) > 1
    short_video, label, clip_id = dataset[1]
    assert (label, clip_id) == (4, "short") and frame_ids(short_video) == [0, 1, 2] + [2] * 13


def test_frames_named_by_numbers_are_read_in_numeric_order(tmp_path):
    folder = tmp_path / "numbered"
    folder.mkdir()
    for k in range(1, 11):  # 1.png .. 10.png: file-name order would be 1, 10, 2, ...
        Image.fromarray(np.full((SIZE, SIZE, 3), frame_value(k - 1), np.uint8)).save(folder / f"{k}.png")
    write_clip(tmp_path, "padded", 10)  # 0000.png ..: the same order either way
    csv_path = write_csv(tmp_path / "test.csv", ["numbered,0", "padded,1"])
    dataset, _ = build_dataset(False, True, make_args(tmp_path, csv_path, test_num_segment=1, test_num_crop=1))
    assert list(dataset.clips[0].frame_names) == [f"{k}.png" for k in range(1, 11)]
    for index in range(2):
        assert frame_ids(dataset[index][0]) == list(range(10)) + [9] * 6


def test_train_items_and_multiple_samples(tmp_path):
    write_clip(tmp_path, "02522", 16, ext=".jpg")
    write_clip(tmp_path, "00007", 9, ext=".jpeg")
    csv_path = write_csv(tmp_path / "train.csv", ["02522,6", "00007,2"])
    dataset, nb_classes = build_dataset(True, False, make_args(tmp_path, csv_path, data_set="DFEW", nb_classes=7))
    assert nb_classes == 7 and dataset.clip_ids == ["02522", "00007"] and dataset.labels == [6, 2]
    video, label, index = dataset[1]
    assert video.shape == (3, 16, SIZE, SIZE) and video.dtype == torch.float32 and (label, index) == (2, 1)
    dataset, _ = build_dataset(True, False, make_args(tmp_path, csv_path, data_set="FERV39k", num_sample=3))
    videos, labels, indices = dataset[0]
    assert len(videos) == 3 and labels == [6] * 3 and indices == [0] * 3
    loader = DataLoader(dataset, batch_size=2, collate_fn=multiple_samples_collate)
    batch_videos, batch_labels, batch_indices = next(iter(loader))
    assert batch_videos.shape == (6, 3, 16, SIZE, SIZE)
    assert batch_labels.tolist() == [6, 6, 6, 2, 2, 2] and batch_indices.tolist() == [0, 0, 0, 1, 1, 1]


def test_generic_frames_dataset_accepts_mixed_extensions(tmp_path):
    write_clip(tmp_path, "x/1", 4, ext=".png")
    write_clip(tmp_path, "x/2", 4, ext=".jpg")
    csv_path = write_csv(tmp_path / "a.csv", ["x/1,0", "x/2,2"], header="path,id")
    dataset, nb_classes = build_dataset(False, False, make_args(tmp_path, csv_path, data_set="FRAMES", nb_classes=3))
    assert nb_classes == 3 and [dataset[i][2] for i in range(2)] == ["x/1", "x/2"]


@pytest.mark.parametrize("overrides, message", [
    (dict(data_set="DFEW", nb_classes=8), "DFEW has 7 classes"),
    (dict(data_set="FRAMES", nb_classes=None), "needs a positive --nb_classes"),
    (dict(data_set="KINETICS"), "--data_set must be one of"),
])
def test_dataset_arguments_are_checked(tmp_path, overrides, message):
    write_clip(tmp_path, "a", 2)
    csv_path = write_csv(tmp_path / "a.csv", ["a,0"])
    with pytest.raises(ValueError, match=message):
        build_dataset(True, False, make_args(tmp_path, csv_path, **overrides))


def build_mafw(tmp_path, rows, header="video_name,labels", **overrides):
    csv_path = write_csv(tmp_path / "anno.csv", rows, header=header)
    return build_dataset(True, False, make_args(tmp_path, csv_path, **overrides))[0]


@pytest.mark.parametrize("rows, header, message", [
    (["good,0", "good,1"], "video_name,labels", r"anno.csv:3: clip 'good' appears more than once"),
    (["good,x"], "video_name,labels", r"anno.csv:2: label 'x' of clip 'good' is not an integer"),
    (["good,2.0"], "video_name,labels", r"anno.csv:2: label '2.0' of clip 'good' is not an integer"),
    (["good,11"], "video_name,labels", r"anno.csv:2: label 11 of clip 'good' is outside \[0, 11\)"),
    (["good,-1"], "video_name,labels", r"anno.csv:2: label -1 of clip 'good' is outside"),
    (["good,1,extra"], "video_name,labels", r"anno.csv:2: expected 2 columns"),
    ([",1"], "video_name,labels", r"anno.csv:2: clip path '' must be a non-empty path relative"),
    (["/abs/clip,1"], "video_name,labels", r"anno.csv:2: clip path '/abs/clip' must be a non-empty path"),
    (["missing,1"], "video_name,labels", r"anno.csv:2: clip folder '.*missing' does not exist"),
    (["jpegs,1"], "video_name,labels", r"anno.csv:2: clip folder '.*jpegs' holds no frame with extension .png"),
    (["empty,1"], "video_name,labels", r"anno.csv:2: clip folder '.*empty' holds no frame"),
    (["good,1"], "good,1", r"anno.csv:1: header row is missing"),
    (["good,1"], "video_name,labels,extra", r"anno.csv:1: expected a header row with 2 column names"),
    ([], "video_name,labels", r"has a header but no clip rows"),
])
def test_bad_annotations_are_reported(tmp_path, rows, header, message):
    write_clip(tmp_path, "good", 3)
    write_clip(tmp_path, "jpegs", 3, ext=".jpg")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match=message):
        build_mafw(tmp_path, rows, header=header)


def test_missing_and_empty_csv(tmp_path):
    args = make_args(tmp_path, tmp_path / "nope.csv")
    with pytest.raises(ValueError, match=r"annotation file '.*nope.csv' does not exist"):
        build_dataset(True, False, args)
    (tmp_path / "empty.csv").write_text("")
    with pytest.raises(ValueError, match=r"annotation file '.*empty.csv' is empty"):
        build_dataset(True, False, make_args(tmp_path, tmp_path / "empty.csv"))


def test_every_offender_is_listed_with_the_total(tmp_path):
    write_clip(tmp_path, "good", 2)
    rows = ["good,0"] + [f"gone{i},0" for i in range(25)]
    with pytest.raises(ValueError) as error:
        build_mafw(tmp_path, rows)
    text = str(error.value)
    assert "25 bad row(s)" in text and "first 20" in text
    assert "anno.csv:22: clip folder" in text and "anno.csv:23:" not in text


def test_skip_bad_clips_drops_them_with_one_warning(tmp_path):
    write_clip(tmp_path, "good", 2)
    write_clip(tmp_path, "fine", 2)
    with pytest.warns(UserWarning, match=r"skipping 2 bad row\(s\)") as record:
        dataset = build_mafw(tmp_path, ["good,0", "gone,1", "fine,3", "good,4"], skip_bad_clips=True,
                             max_bad_fraction=0.5)
    assert len(record) == 1 and "anno.csv:3" in str(record[0].message) and "anno.csv:5" in str(record[0].message)
    assert dataset.clip_ids == ["good", "fine"] and dataset.labels == [0, 3]
    with warnings.catch_warnings(), pytest.raises(ValueError, match="every row .* is bad"):
        warnings.simplefilter("ignore")
        build_mafw(tmp_path, ["gone,1"], skip_bad_clips=True, max_bad_fraction=1.0)
    with pytest.warns(UserWarning), pytest.raises(TooManyBadClipsError, match=r"train split: 2 of 4 clips are bad"):
        build_mafw(tmp_path, ["good,0", "gone,1", "fine,3", "good,4"], skip_bad_clips=True, max_bad_fraction=0.25)


def truncate(frame_path):
    frame_path.write_bytes(frame_path.read_bytes()[:60])


def test_undecodable_frame_names_csv_line_clip_and_file(tmp_path):
    write_clip(tmp_path, "fine", 4)
    write_clip(tmp_path, "broken", 4)
    truncate(tmp_path / "broken" / "0002.png")
    dataset = build_mafw(tmp_path, ["fine,1", "broken,0"])
    expected = r"anno.csv:3: clip 'broken': cannot decode frame '.*broken/0002.png': "
    with pytest.raises(BadClipError, match=expected):
        dataset[1]
    with pytest.raises(BadClipError) as error:  # re-raised from a worker: the message holds its traceback
        list(DataLoader(dataset, batch_size=2, num_workers=1))
    assert "Traceback" in str(error.value)
    summary = BadClipError.summary(error.value)
    assert "\n" not in summary
    assert summary == BadClipError.summary(pytest.raises(BadClipError, dataset.__getitem__, 1).value)


def write_bad_split(tmp_path):
    """Clips c0..c7 (label i % 2) of 4 frames; c2 and c4 (label 0) have a truncated frame."""
    for i in range(8):
        write_clip(tmp_path, f"c{i}", 4, ext=".jpg")
    for i in (2, 4):
        truncate(tmp_path / f"c{i}" / "0001.jpg")
    return write_csv(tmp_path / "bad.csv", [f"c{i},{i % 2}" for i in range(8)])


def test_skip_bad_clips_replaces_with_the_next_good_clip_of_the_same_label(tmp_path):
    csv_path = write_bad_split(tmp_path)
    args = make_args(tmp_path, csv_path, data_set="FRAMES", nb_classes=2, num_frames=4, skip_bad_clips=True,
                     max_bad_fraction=0.25)
    dataset, _ = build_dataset(True, False, args)
    loader = watch_bad_clips(DataLoader(dataset, batch_size=4, num_workers=2), drop_replaced=False)
    batches = list(loader)
    used = torch.cat([batch[2] for batch in batches]).tolist()
    assert used == [0, 1, 6, 3, 6, 5, 6, 7]  # c2 -> c6 (c4, the next label-0 clip, is bad too); c4 -> c6
    assert torch.cat([batch[1] for batch in batches]).tolist() == [i % 2 for i in range(8)]
    assert loader.replaced == 2 and sorted(dataset.state_dict()) == ["c2", "c4"]
    assert "bad.csv:4: clip 'c2': cannot decode frame" in dataset.state_dict()["c2"]

    # the same random draws whether a bad clip is tried or already known
    fresh, _ = build_dataset(True, False, args)
    for known in (fresh, dataset):
        np.random.seed(3)
        torch.manual_seed(3)
        random.seed(3)
        known.video = known[2][0]
    assert torch.equal(fresh.video, dataset.video)

    with pytest.raises(TooManyBadClipsError, match=r"train split: 2 of 8 clips are bad .* --max_bad_fraction 0.2"):
        args.max_bad_fraction = 0.2
        list(watch_bad_clips(DataLoader(build_dataset(True, False, args)[0], batch_size=4), drop_replaced=False))


def test_evaluation_drops_replaced_items(tmp_path):
    csv_path = write_bad_split(tmp_path)
    args = make_args(tmp_path, csv_path, data_set="FRAMES", nb_classes=2, num_frames=4, skip_bad_clips=True,
                     max_bad_fraction=0.25, test_num_segment=2, test_num_crop=1)
    dataset, _ = build_dataset(False, True, args)
    batches = list(watch_bad_clips(DataLoader(dataset, batch_size=5), drop_replaced=True))
    seen = [(clip_id, segment) for batch in batches for clip_id, segment in zip(batch[2], batch[3].tolist())]
    assert seen == [(f"c{i}", segment) for segment in range(2) for i in (0, 1, 3, 5, 6, 7)]


def test_worker_augmentation_is_reproducible_from_the_torch_seed(tmp_path):
    write_clip(tmp_path, "a", 20)
    write_clip(tmp_path, "b", 12)
    csv_path = write_csv(tmp_path / "train.csv", ["a,0", "b,1"])
    dataset, _ = build_dataset(True, False, make_args(tmp_path, csv_path))

    def first_batch(seed):
        torch.manual_seed(seed)
        return next(iter(DataLoader(dataset, batch_size=2, num_workers=2)))[0]

    assert torch.equal(first_batch(0), first_batch(0))
    assert not torch.equal(first_batch(0), first_batch(1))


def test_benchmark_loader_reports_rates():
    from benchmarks.benchmark_data import benchmark_loader, parse_args
    results = benchmark_loader(parse_args(["--num_clips", "1", "--num_items", "2"]))
    assert results["num_items"] == 2 and results["data"] == "1 temporary 224x224 16-frame JPEG clips"
    assert results["test_clips_per_s"] == pytest.approx(results["test_views_per_s"] / 4, abs=0.01)


ORIGINAL_LAYOUTS = {  # data set -> (CSV path as in the original repository, header, clip ids, frame extension)
    "DFEW": ("EmoLabel_DataSplit/train(single-labeled)/train_set_1.csv", "video_name,label", ["00001", "02522"],
             ".jpg"),
    "FERV39K": ("Annotation/train.csv", "path,id", ["Crime/Angry/0063", "Argue/Surprise/0196"], ".jpg"),
    "MAFW": ("anno/single/no_caption/set_1/train.csv", "video_name,labels", ["00025", "03747"], ".png"),
}
SHAPES = {  # name -> (header, row) with {h} the header names and {c}, {l} a row's clip and label
    "as shipped": ("{h}\n", "{c},{l}\n"),
    "BOM and CRLF": ("\ufeff{h}\r\n", "{c},{l}\r\n"),
    "blank lines, no final newline": ("{h}\n\n", "{c},{l}\n\n"),
    "spaces around fields": ("{h}\n", " {c} , {l} \n"),
    "trailing comma": ("{h},\n", "{c},{l},\n"),
    "pandas index column": (",{h}\n", "{i},{c},{l}\n"),
}


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("data_set", ORIGINAL_LAYOUTS)
def test_annotation_files_of_the_original_repository_are_read_as_they_are(tmp_path, data_set, shape):
    relative_csv, header, clip_ids, ext = ORIGINAL_LAYOUTS[data_set]
    for clip_id in clip_ids:
        write_clip(tmp_path / "frames", clip_id, 2, ext=ext)
    header_format, row_format = SHAPES[shape]
    text = header_format.format(h=header) + "".join(
        row_format.format(i=i, c=c, l=i + 5) for i, c in enumerate(clip_ids))
    csv_path = tmp_path / relative_csv
    csv_path.parent.mkdir(parents=True)
    csv_path.write_bytes(text.rstrip("\n").encode() if "no final newline" in shape else text.encode())
    dataset, _ = build_dataset(True, False, make_args(tmp_path / "frames", csv_path, data_set=data_set))
    assert dataset.clip_ids == clip_ids and dataset.labels == [5, 6]
    assert [clip.line for clip in dataset.clips] == ([3, 5] if "blank" in shape else [2, 3])


def test_check_data_finds_every_corrupt_frame_and_writes_clean_csvs(tmp_path, capsys, monkeypatch):
    from datasets import check
    from scripts.check_data import main as check_data
    monkeypatch.setattr(check, "CONSOLE_BAD_CLIPS", 3)
    write_clip(tmp_path, "a", 5, ext=".jpg")
    write_clip(tmp_path, "b", 5, ext=".jpg")
    write_clip(tmp_path, "c", 3, ext=".jpg")
    write_clip(tmp_path, "mixed", 2, ext=".jpg")
    write_clip(tmp_path, "d", 3, ext=".jpg")
    for frame in ("a/0001.jpg", "a/0004.jpg", "b/0000.jpg"):
        truncate(tmp_path / frame)
    Image.fromarray(np.zeros((SIZE + 2, SIZE, 3), np.uint8)).save(tmp_path / "mixed" / "0001.jpg")
    (tmp_path / "splits" / "set_1").mkdir(parents=True)
    train = write_csv(tmp_path / "splits" / "set_1" / "train.csv", ["a,0", "c,1", "gone,2", "mixed,3"])
    test = write_csv(tmp_path / "splits" / "test.csv", ["b,4", "d,5"], header="path,id")
    report = tmp_path / "out" / "bad.csv"
    status = check_data(["--data_set", "FRAMES", "--nb_classes", "7", "--data_path", str(tmp_path), "--workers", "2",
                         "--label_path", str(train), str(test), "--report", str(report),
                         "--clean_dir", str(tmp_path / "clean")])
    assert status == 1
    rows = {row["clip"]: row for row in csv.DictReader(report.open())}
    assert sorted(rows) == ["a", "b", "gone", "mixed"]
    assert rows["a"]["bad_frames"] == "0001.jpg 0004.jpg" and rows["a"]["line"] == "2"
    assert rows["a"]["reason"].startswith("2 of 5 frames cannot be decoded; first: cannot decode frame")
    assert rows["b"]["bad_frames"] == "0000.jpg" and rows["b"]["label_file"] == str(test)
    assert "does not exist" in rows["gone"]["reason"] and "differ in size" in rows["mixed"]["reason"]
    assert (tmp_path / "clean" / "set_1" / "train.csv").read_text() == "video_name,label\nc,1\n"
    assert (tmp_path / "clean" / "test.csv").read_text() == "path,id\nd,5\n"
    console = capsys.readouterr().out.splitlines()  # the first 3 bad clips named, then the count of the others
    named = [line for line in console if line.startswith("  ") and ": clip " in line]
    assert [line.split("clip ")[1].split(":")[0] for line in named] == ["'gone'", "'a'", "'mixed'"]
    assert named[1].startswith(f"  {train}:2: clip 'a': 2 of 5 frames cannot be decoded")
    assert "  and 1 more; see the report" in console
    assert check_data(["--data_set", "FRAMES", "--nb_classes", "7", "--data_path", str(tmp_path), "--workers", "1",
                       "--label_path", str(tmp_path / "clean" / "test.csv"), "--report", str(report)]) == 0

"""Test-view de-duplication: views identical by construction are computed once, and every reported
number (scores, predictions, metrics, features) equals the computation of every view."""
import sys

import numpy as np
import pytest
import torch
from PIL import Image
from torch.utils.data import DataLoader, DistributedSampler

from datasets import VideoClsDataset
from datasets.unique_views import UniqueTestViews, collate_views
from engine.evaluate import evaluate, predict_views
from models.landmark import LandmarkFeatures
from tests.helpers import tiny_model

CLIP_LEN, SEGMENTS, CROPS = 4, 3, 2
# frame count -> the test views that coincide (3 segments x 2 crops, 4 frames per view; square resizing
# makes both crops of a segment coincide; segment starts int(s * (n - 4) / 2))
FRAME_COUNTS = {3: [[(0, 0), (0, 1), (1, 0), (1, 1), (2, 0), (2, 1)]],  # padded to 4: one view
                4: [[(0, 0), (0, 1), (1, 0), (1, 1), (2, 0), (2, 1)]],
                5: [[(0, 0), (0, 1), (1, 0), (1, 1)], [(2, 0), (2, 1)]],  # starts 0, 0, 1
                6: [[(0, 0), (0, 1)], [(1, 0), (1, 1)], [(2, 0), (2, 1)]],  # starts 0, 1, 2
                7: [[(0, 0), (0, 1)], [(1, 0), (1, 1)], [(2, 0), (2, 1)]],  # starts 0, 1, 3
                9: [[(0, 0), (0, 1)], [(1, 0), (1, 1)], [(2, 0), (2, 1)]]}  # starts 0, 2, 5


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    root = tmp_path_factory.mktemp("views")
    rng = np.random.default_rng(0)
    rows = ["video_name,label"]
    for i, num_frames in enumerate(FRAME_COUNTS):
        (root / f"clip{num_frames}").mkdir()
        for k in range(num_frames):  # non-square noise frames: every frame and every crop differs
            Image.fromarray(rng.integers(0, 256, (20, 28, 3), dtype=np.uint8)).save(root / f"clip{num_frames}/{k}.png")
        rows.append(f"clip{num_frames},{i % 3}")
    (root / "test.csv").write_text("\n".join(rows) + "\n")
    return VideoClsDataset(str(root / "test.csv"), str(root), "test", 3, (".png",), clip_len=CLIP_LEN,
                           input_size=64, short_side_size=64, test_num_segment=SEGMENTS, test_num_crop=CROPS,
                           aa=None)


@pytest.fixture(scope="module")
def model():
    model = tiny_model("s2d_tiny_patch8_64", num_frames=CLIP_LEN, num_classes=3, depth=2)
    return model, LandmarkFeatures(None, grid_size=model.grid_size)


@pytest.fixture(scope="module")
def full(dataset, model):
    """Results of computing every test view."""
    return _evaluate(model, dataset)


def test_views_are_grouped_by_frames_and_crop(dataset):
    unique = UniqueTestViews(dataset)
    groups = {}
    for first, views in unique.items:
        groups.setdefault(dataset[first][2], []).append(views)
    assert groups == {f"clip{n}": expected for n, expected in FRAME_COUNTS.items()}
    assert unique.num_views == len(dataset) == 6 * SEGMENTS * CROPS
    assert len(unique) == sum(len(v) for v in FRAME_COUNTS.values()) == 13
    assert "23 forward passes saved" in unique.summary()


def test_grouped_views_show_the_same_pixels_and_others_differ(dataset):
    index_of = {(dataset[i][2], dataset[i][3], dataset[i][4]): i for i in range(len(dataset))}
    unique = UniqueTestViews(dataset)
    videos = []
    for item in range(len(unique)):
        video, _, clip_id, views = unique[item]
        for segment, crop in views:
            assert torch.equal(dataset[index_of[(clip_id, segment, crop)]][0], video)
        videos.append(video)
    assert all(not torch.equal(a, b) for i, a in enumerate(videos) for b in videos[i + 1:])


def _evaluate(model, views_dataset, collate_fn=None):
    loader = DataLoader(views_dataset, batch_size=3, collate_fn=collate_fn)
    return evaluate(*model, loader, torch.device("cpu"), 3, keep_features=True)


def _assert_same_results(got, expected, same_order=True):
    (metrics, (ids, labels, scores), *_), (metrics_full, (ids_full, labels_full, scores_full), *_) = got, expected
    metrics_full = dict(metrics_full)
    if not same_order:  # gathered shards list the clips in another order
        order = [ids.index(c) for c in ids_full]
        ids, labels, scores = [ids[i] for i in order], labels[order], scores[order]
    assert ids == ids_full and labels.tolist() == labels_full.tolist()
    assert scores.argmax(1).tolist() == scores_full.argmax(1).tolist()
    np.testing.assert_allclose(scores, scores_full, rtol=0, atol=1e-6)
    assert metrics["loss"] == pytest.approx(metrics_full.pop("loss"), abs=1e-6)
    assert {k: v for k, v in metrics.items() if k != "loss"} == metrics_full


@pytest.mark.slow
def test_distinct_views_give_the_results_of_every_view(dataset, model, full):
    unique = _evaluate(model, UniqueTestViews(dataset), collate_fn=collate_views)
    _assert_same_results(unique, full)
    records, features = unique[2], unique[3]
    assert sorted(r[:3] for r in records) == sorted(r[:3] for r in full[2])
    assert len(features) == len(records)  # --save_feature: one feature per test view, as without de-duplication
    full_features = {r[:3]: f for r, f in zip(full[2], full[3])}
    for record, feature in zip(records, features):
        torch.testing.assert_close(feature, full_features[record[:3]], rtol=0, atol=1e-5)


@pytest.mark.slow
def test_merge_weights_each_distinct_view_by_the_views_it_stands_for(dataset, model):
    """clip5 shows one picture in 4 views and another in 2: its score is (4 a + 2 b) / 6, not (a + b) / 2."""
    metrics, (ids, _, scores), records, _ = _evaluate(model, UniqueTestViews(dataset), collate_fn=collate_views)
    clip5 = [r for r in records if r[0] == "clip5"]
    a, b = (torch.as_tensor(next(r[3] for r in clip5 if r[1] == s), dtype=torch.float64).softmax(0).numpy()
            for s in (0, 2))
    assert not np.allclose(a, b)
    np.testing.assert_allclose(scores[ids.index("clip5")], (4 * a + 2 * b) / 6, rtol=0, atol=1e-12)


@pytest.mark.slow
def test_sharded_distinct_views_gathered_equal_one_process(dataset, model, full, monkeypatch):
    """Two processes' shards (the sampler pads the 13 distinct views to 14 with a repeat of the first)
    gathered as under torchrun give the single-process results of every view."""
    unique = UniqueTestViews(dataset)
    loaders = [DataLoader(unique, batch_size=3, collate_fn=collate_views,
                          sampler=DistributedSampler(unique, num_replicas=2, rank=rank, shuffle=False))
               for rank in range(2)]
    other_rank = iter(predict_views(*model, loaders[1], torch.device("cpu"), keep_features=True))
    monkeypatch.setattr(sys.modules["engine.evaluate"], "all_gather_objects", lambda obj: [obj, next(other_rank)])
    gathered = evaluate(*model, loaders[0], torch.device("cpu"), 3, gather=True, keep_features=True)
    _assert_same_results(gathered, full, same_order=False)
    assert len(gathered[2]) == len(gathered[3]) == len(dataset) + len(FRAME_COUNTS[3][0])  # the padded repeat


def test_unique_views_need_a_test_dataset(dataset):
    dataset.mode = "validation"
    try:
        with pytest.raises(ValueError, match="'test' mode"):
            UniqueTestViews(dataset)
    finally:
        dataset.mode = "test"

"""Clip consistency of the train transform (RandAugment, crop, flip, erasing) and exactness of the evaluation
transform; tests/test_parity_original.py compares both with the original's."""
import random

import numpy as np
import pytest
import torch
from PIL import Image
from timm.data import IMAGENET_DEFAULT_MEAN, IMAGENET_DEFAULT_STD

from datasets.random_erasing import ClipRandomErasing
from datasets.transforms import ClipEvalTransform, ClipRandAugment, ClipTrainTransform

RAND_AUGMENT = "rand-m7-n4-mstd0.5-inc1"


def varied_frames(num_frames=6, size=24, seed=0):
    """uint8 (T, 3, size, size) frames with distinct smooth content."""
    rng = np.random.default_rng(seed)
    frames = [np.asarray(Image.fromarray(rng.integers(0, 256, (4, 4, 3), dtype=np.uint8)).resize((size, size)))
              for _ in range(num_frames)]
    return torch.from_numpy(np.stack(frames)).permute(0, 3, 1, 2).contiguous()


def seed_all(seed):
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def test_identical_frames_stay_identical_after_train_transform():
    frame = varied_frames(1)[0]
    transform = ClipTrainTransform(16, 24, RAND_AUGMENT, "bicubic", reprob=0.0, remode="pixel", recount=1)
    for seed in range(10):
        seed_all(seed)
        video = transform(frame.expand(5, -1, -1, -1))
        assert video.shape == (3, 5, 16, 16)
        assert all(torch.equal(video[:, 0], video[:, t]) for t in range(1, 5))


def test_rand_augment_replays_the_same_ops_on_every_frame():
    images = [Image.fromarray(f) for f in varied_frames(4).permute(0, 2, 3, 1).numpy()]
    clip_augment = ClipRandAugment(RAND_AUGMENT, 24, "bicubic")
    changed = 0
    for seed in range(20):
        seed_all(seed)
        augmented = clip_augment(images)
        after_clip = (random.random(), np.random.rand())
        for image, result in zip(images, augmented):
            seed_all(seed)
            alone = clip_augment.rand_augment(image)
            assert np.array_equal(np.asarray(alone), np.asarray(result))
        # the RNGs end where one draw leaves them
        assert (random.random(), np.random.rand()) == after_clip
        changed += not np.array_equal(np.asarray(augmented[0]), np.asarray(images[0]))
    assert changed > 10


def test_crop_and_flip_use_one_box_for_the_whole_clip():
    """Frames differ by a constant, so after one shared crop/flip their difference stays constant."""
    base = varied_frames(1, size=24)[0].clamp(max=200)
    offsets = torch.arange(5, dtype=torch.uint8) * 10
    frames = base[None] + offsets[:, None, None, None]
    transform = ClipTrainTransform(16, 24, None, "bicubic", reprob=0.0, remode="pixel", recount=1)
    std = torch.tensor(IMAGENET_DEFAULT_STD)
    for seed in range(10):
        seed_all(seed)
        video = transform(frames)
        for t in range(5):
            difference = video[:, t] - video[:, 0]
            expected = (10 * t / 255 / std)[:, None, None].expand_as(difference)
            torch.testing.assert_close(difference, expected, atol=1e-5, rtol=0)


def erased(video, value=5.0):
    """(T, H, W) mask of the erased pixels of a clip that was constant `value` before erasing."""
    return (video != value).any(dim=1)


def test_random_erasing_makes_one_decision_and_one_box_per_clip():
    """The original's clip-level erasing: about `probability` of the clips erased, every frame of an erased clip
    with the same box and its own noise (timm's RandomErasing would decide and place a box per frame)."""
    erase = ClipRandomErasing(0.25, mode="pixel")
    seed_all(0)
    clips, erased_clips = 800, 0
    for _ in range(clips):
        video = erase(torch.full((8, 3, 12, 12), 5.0))
        mask = erased(video)
        if mask.any():
            erased_clips += 1
            assert all(torch.equal(mask[t], mask[0]) for t in range(8))
            rows, cols = mask[0].nonzero().unbind(1)
            assert mask[0].sum() == (rows.max() - rows.min() + 1) * (cols.max() - cols.min() + 1)  # one rectangle
            box = video[:, :, rows.min():rows.max() + 1, cols.min():cols.max() + 1]
            assert not torch.equal(box[0], box[1])
    assert 163 <= erased_clips <= 237  # 800 x 0.25 = 200, within 3 standard deviations (12.2)


def test_random_erasing_modes_and_counts():
    seed_all(1)
    rand = ClipRandomErasing(1.0, mode="rand")(torch.full((4, 3, 12, 12), 5.0))
    mask = erased(rand)
    assert mask.any() and all(len(rand[t, c][mask[t]].unique()) == 1 for t in range(4) for c in range(3))
    const = ClipRandomErasing(1.0, mode="const")(torch.full((4, 3, 12, 12), 5.0))
    assert erased(const).any() and (const[:, :, erased(const)[0]] == 0).all()
    # quirk kept from the original: with --recount N the first T // N frames stay clean
    for _ in range(20):
        video = ClipRandomErasing(1.0, mode="pixel", max_count=2)(torch.full((6, 3, 12, 12), 5.0))
        mask = erased(video)
        assert not mask[:3].any() and mask[3:].any()
    with pytest.raises(ValueError, match="mode must be one of"):
        ClipRandomErasing(0.25, mode="pixels")


def test_train_transform_erases_the_whole_clip():
    frame = varied_frames(1)[0]
    clip = frame.expand(4, -1, -1, -1)
    seed_all(0)
    clean = ClipTrainTransform(24, 24, None, "bicubic", reprob=0.0, remode="pixel", recount=1)(clip)
    seed_all(0)  # the same crop and flip, then erasing
    video = ClipTrainTransform(24, 24, None, "bicubic", reprob=1.0, remode="pixel", recount=1)(clip)
    mask = (video != clean).any(dim=0)
    assert mask.any() and all(torch.equal(mask[t], mask[0]) for t in range(4))
    assert not torch.equal(video[:, 0][:, mask[0]], video[:, 1][:, mask[1]])


def test_rand_augment_fills_with_grey_128_as_the_original():
    black = Image.fromarray(np.zeros((24, 24, 3), np.uint8))
    ops = {op.name: op for op in ClipRandAugment(RAND_AUGMENT, 24, "bicubic").rand_augment.ops}
    for name in ("Rotate", "ShearX", "ShearY", "TranslateXRel", "TranslateYRel"):
        op = ops[name]
        seed_all(0)
        moved = np.asarray(op.aug_fn(black, *op.level_fn(10.0, op.hparams), **op.kwargs))
        assert {tuple(pixel) for pixel in moved.reshape(-1, 3)} == {(0, 0, 0), (128, 128, 128)}, name


def test_eval_transform_is_centre_crop_and_normalise():
    frames = varied_frames(3, size=20)
    video = ClipEvalTransform(input_size=12, short_side=20)(frames)
    mean = torch.tensor(IMAGENET_DEFAULT_MEAN)[:, None, None, None]
    std = torch.tensor(IMAGENET_DEFAULT_STD)[:, None, None, None]
    expected = (frames.permute(1, 0, 2, 3)[:, :, 4:16, 4:16].float() / 255 - mean) / std
    torch.testing.assert_close(video, expected)


def test_eval_transform_resizes_to_a_square_short_side():
    frames = varied_frames(2, size=30)
    video = ClipEvalTransform(input_size=10, short_side=10)(frames)
    assert video.shape == (3, 2, 10, 10)

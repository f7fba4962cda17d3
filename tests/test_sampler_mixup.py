"""Class-balanced oversampler and video Mixup/CutMix."""
from collections import Counter

import numpy as np
import pytest
import torch

from datasets import ClassBalancedSampler, VideoMixup

LABELS = [0] * 70 + [1] * 20 + [2] * 10


def test_draws_are_class_balanced():
    sampler = ClassBalancedSampler(LABELS, seed=3)
    counts = Counter()
    for epoch in range(40):
        sampler.set_epoch(epoch)
        drawn = list(sampler)
        assert len(drawn) == len(sampler) == len(LABELS)
        counts.update(LABELS[i] for i in drawn)
    total = sum(counts.values())
    for label in range(3):
        assert abs(counts[label] / total - 1 / 3) < 0.03


def test_epoch_seeding():
    sampler = ClassBalancedSampler(LABELS, seed=5)
    sampler.set_epoch(1)
    first = list(sampler)
    assert list(sampler) == first
    sampler.set_epoch(2)
    assert list(sampler) != first
    other = ClassBalancedSampler(LABELS, seed=4)
    other.set_epoch(2)
    assert list(other) == first  # seed + epoch decides the draw
    generator = torch.Generator().manual_seed(6)
    weights = torch.tensor([1 / Counter(LABELS)[label] for label in LABELS], dtype=torch.float64)
    assert first == torch.multinomial(weights, len(LABELS), replacement=True, generator=generator).tolist()


@pytest.mark.parametrize("num_replicas", [1, 3, 7])
def test_shards_are_disjoint_and_complete(num_replicas):
    whole = ClassBalancedSampler(LABELS, seed=1)
    whole.set_epoch(4)
    draw = list(whole)
    shards = []
    for rank in range(num_replicas):
        sampler = ClassBalancedSampler(LABELS, num_replicas=num_replicas, rank=rank, seed=1)
        sampler.set_epoch(4)
        shards.append(list(sampler))
        assert len(shards[-1]) == len(sampler) == -(-len(LABELS) // num_replicas)
    interleaved = [shard[i] for i in range(len(shards[0])) for shard in shards]
    padded = (draw * 2)[:len(interleaved)]
    assert interleaved == padded


def test_sampler_argument_errors():
    with pytest.raises(ValueError, match="at least one label"):
        ClassBalancedSampler([])
    with pytest.raises(ValueError, match="rank must be in"):
        ClassBalancedSampler(LABELS, num_replicas=2, rank=2)


def two_clip_batch():
    x = torch.stack([torch.zeros(3, 4, 16, 16), torch.ones(3, 4, 16, 16)])
    return x, torch.tensor([1, 3])


def test_cutmix_pastes_one_box_for_every_frame_with_matching_lambda():
    mixup = VideoMixup(mixup_alpha=0.0, cutmix_alpha=1.0, label_smoothing=0.0, num_classes=5)
    pasted = 0
    for seed in range(10):
        torch.manual_seed(seed)
        np.random.seed(seed)
        x, target = two_clip_batch()
        mixed, soft = mixup(x, target)
        assert mixed.shape == x.shape and soft.shape == (2, 5)
        mask = mixed[0]  # ones where clip 1 was pasted into clip 0
        assert all(torch.equal(mask[0, 0], mask[c, t]) for c in range(3) for t in range(4))
        lam = soft[0, 1].item()
        assert mask[0, 0].mean().item() == pytest.approx(1 - lam, abs=1e-6)
        assert soft[0, 3].item() == pytest.approx(1 - lam, abs=1e-6)
        assert torch.equal(mixed[1], 1 - mixed[0])
        pasted += lam < 1
    assert pasted > 5


def test_mixup_blends_whole_clips():
    mixup = VideoMixup(mixup_alpha=0.8, cutmix_alpha=0.0, label_smoothing=0.1, num_classes=5)
    x, target = two_clip_batch()
    mixed, soft = mixup(x, target)
    lam = 1 - mixed[0, 0, 0, 0, 0].item()
    torch.testing.assert_close(mixed[0], torch.full_like(mixed[0], 1 - lam))
    off = 0.1 / 5
    expected = torch.full((5,), off)
    expected[1] += lam * (1 - 0.1)
    expected[3] += (1 - lam) * (1 - 0.1)
    torch.testing.assert_close(soft[0], expected)


def test_mixup_rejects_odd_batches_and_wrong_rank():
    mixup = VideoMixup(num_classes=5)
    with pytest.raises(ValueError, match="even batch size, got 3"):
        mixup(torch.zeros(3, 3, 2, 4, 4), torch.tensor([0, 1, 2]))
    with pytest.raises(ValueError, match=r"\(B, C, T, H, W\) batch"):
        mixup(torch.zeros(2, 3, 4, 4), torch.tensor([0, 1]))

"""Engine pieces on hand-made inputs: schedules, parameter groups, SDL, multi-view merge and metrics."""
import io
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from sklearn.metrics import confusion_matrix, f1_score, recall_score
from timm.optim import create_optimizer_v2

from engine.metrics import classification_metrics, merge_views
from engine.schedule import cosine_scheduler
from engine.sdl import SDL, sdl_weight
from engine.train import apply_schedule, train_one_epoch
from models.freezing import freeze_for_finetuning
from models.registry import build_model
from tests.helpers import tiny_model
from utils.progress import ProgressLogger


def test_cosine_schedule_matches_spec_formula():
    base, final, epochs, steps, warmup_epochs = 2e-5, 1e-7, 5, 4, 2
    values = cosine_scheduler(base, final, epochs, steps, warmup_epochs)
    assert len(values) == epochs * steps
    warmup = warmup_epochs * steps
    for i in range(warmup):
        assert values[i] == pytest.approx(base * i / (warmup - 1))
    rest = epochs * steps - warmup
    for j in range(rest):
        expected = final + 0.5 * (base - final) * (1 + math.cos(math.pi * j / rest))
        assert values[warmup + j] == pytest.approx(expected)
    assert values[0] == 0.0 and values[warmup] == pytest.approx(base)


def test_warmup_steps_override_warmup_epochs():
    values = cosine_scheduler(1.0, 0.0, 3, 10, warmup_epochs=2, warmup_steps=5)
    assert values[4] == pytest.approx(1.0) and values[3] == pytest.approx(0.75)
    assert len(values) == 30


def test_constant_weight_decay_schedule():
    assert np.allclose(cosine_scheduler(0.05, 0.05, 3, 7), 0.05)


def _param_groups(model, layer_decay=None):
    optimizer = create_optimizer_v2(model, opt="adamw", lr=1.0, weight_decay=0.05, layer_decay=layer_decay)
    names = {id(p): n for n, p in model.named_parameters()}
    return optimizer, [(g["weight_decay"], g.get("lr_scale", 1.0), {names[id(p)] for p in g["params"]})
                       for g in optimizer.param_groups]


def test_param_groups_skip_decay_for_biases_norms_and_embeddings():
    model = build_model("s2d_tiny_patch8_112", num_frames=4)
    freeze_for_finetuning(model)
    _, groups = _param_groups(model)
    decayed = set().union(*(names for wd, _, names in groups if wd > 0))
    undecayed = set().union(*(names for wd, _, names in groups if wd == 0))
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    assert decayed | undecayed == trainable and not decayed & undecayed
    assert "temporal_embedding" in undecayed
    assert "prompt_blocks.0.fovea.smooth" in undecayed
    params = dict(model.named_parameters())
    assert all(params[n].ndim <= 1 or n in model.no_weight_decay() for n in undecayed)
    assert all(params[n].ndim > 1 for n in decayed)
    assert "head.fc_cls.weight" in decayed and "prompt_blocks.1.TMA.T_Adapter.attn.qkv.weight" in decayed
    assert not any(n.startswith("blocks.") or n.startswith("patch_embed.") for n in trainable)


def test_schedule_applies_lr_scale_and_only_decaying_groups():
    model = build_model("s2d_tiny_patch8_112", num_frames=4)
    optimizer, _ = _param_groups(model, layer_decay=0.5)
    apply_schedule(optimizer, 0.1, 0.02)
    scales = {g["lr_scale"] for g in optimizer.param_groups}
    assert len(scales) > 1 and max(scales) == 1.0
    for group in optimizer.param_groups:
        assert group["lr"] == pytest.approx(0.1 * group["lr_scale"])
        assert group["weight_decay"] in (0.0, 0.02)


def test_sdl_weight_schedule():
    expected = {0: 0, 29: 0, 30: 0.01, 49: 0.01, 50: 0.1, 59: 0.1, 60: 0.5, 79: 0.5, 80: 1.0, 99: 1.0}
    assert {e: sdl_weight(e) for e in expected} == expected


def test_sdl_soft_targets_follow_the_spec_sum():
    torch.manual_seed(0)
    sdl = SDL(num_classes=3, dim=5, k=2, queue_size=4)
    features = torch.randn(6, 5)
    got = sdl.soft_targets(features)
    for i, f in enumerate(features):
        num, den = torch.zeros(3), 0.0
        for c in range(3):
            sims = torch.tensor([F.cosine_similarity(f, q, dim=0).item() for q in sdl.queue[c]])
            vals, idx = sims.topk(2)
            for s, j in zip(vals, idx):
                num += s * sdl.probe[c, j]
                den += s.item()
        assert torch.allclose(got[i], num / den, atol=1e-5)


def test_sdl_update_is_fifo_per_true_class_in_batch_order():
    sdl = SDL(num_classes=2, dim=3, k=1, queue_size=3)
    before = sdl.queue.clone()
    features = torch.arange(9, dtype=torch.float32).reshape(3, 3)
    logits = torch.tensor([[2.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
    sdl.update(features, logits, torch.tensor([0, 1, 0]))
    assert torch.equal(sdl.queue[0], torch.stack([before[0, 2], features[0], features[2]]))
    assert torch.equal(sdl.queue[1], torch.stack([before[1, 1], before[1, 2], features[1]]))
    assert torch.allclose(sdl.probe[0, 1:], logits[[0, 2]].softmax(1))
    assert torch.allclose(sdl.probe[1, 2], logits[1].softmax(0))


def test_sdl_loss_is_weighted_bce_with_detached_targets():
    torch.manual_seed(1)
    sdl = SDL(num_classes=4, dim=6)
    logits = torch.randn(3, 4, requires_grad=True)
    features = torch.randn(3, 6, requires_grad=True)
    loss = sdl.loss(logits, features, epoch=55)
    expected = 0.1 * F.binary_cross_entropy_with_logits(logits, sdl.soft_targets(features))
    assert loss.item() == pytest.approx(expected.item())
    loss.backward()
    assert features.grad is None and logits.grad is not None
    assert sdl.loss(logits, features, epoch=10).item() == 0.0


def test_merge_views_averages_softmax_and_counts_padded_repeats_once():
    a0, a1, b0 = np.array([2.0, 0.0, 0.0]), np.array([0.0, 3.0, 0.0]), np.array([0.0, 0.0, 1.0])
    records = [("a", 0, 0, a0, 1), ("b", 0, 0, b0, 2), ("a", 1, 0, a1, 1), ("a", 1, 0, a1, 1), ("b", 0, 0, b0, 2)]
    clip_ids, labels, scores = merge_views(records)
    assert clip_ids == ["a", "b"] and labels.tolist() == [1, 2]

    def softmax(x):
        return np.exp(x) / np.exp(x).sum()

    assert np.allclose(scores[0], (softmax(a0) + softmax(a1)) / 2)
    assert np.allclose(scores[1], softmax(b0))


def test_metrics_match_sklearn():
    rng = np.random.default_rng(0)
    labels = np.array([0, 0, 0, 1, 1, 2, 2, 2, 2, 4, 6, 7])  # classes 3 and 5 absent from the ground truth
    scores = rng.random((len(labels), 8))
    scores[np.arange(6), labels[:6]] += 1.0
    preds = scores.argmax(1)
    m = classification_metrics(labels, scores, num_classes=8)
    assert 0 < m["war"] < 100 and m["acc1"] == pytest.approx(100 * (preds == labels).mean()) == m["war"]
    assert m["uar"] == pytest.approx(100 * recall_score(labels, preds, labels=[0, 1, 2, 4, 6, 7], average="macro"))
    conf = confusion_matrix(labels, preds, labels=range(8))
    present = conf.sum(1) > 0
    assert m["uar"] == pytest.approx(100 * np.mean(conf.diagonal()[present] / conf.sum(1)[present]))
    for avg in ("weighted", "micro", "macro"):
        assert m[f"{avg}_f1"] == pytest.approx(100 * f1_score(labels, preds, average=avg))
    assert m["confusion_matrix"] == conf.tolist()
    assert m["class_acc"][3] is None and m["class_acc"][5] is None
    # top-5 of 8 classes: the label among the 5 highest scores
    top5 = [y in sorted(range(8), key=lambda k: -s[k])[:5] for s, y in zip(scores, labels)]
    assert 0 < m["acc5"] < 100 and m["acc5"] == pytest.approx(100 * np.mean(top5))


def one_update(batch_size, update_freq, videos, labels):
    """The weights after one optimisation step of train_one_epoch: batches of `batch_size`, `update_freq` of them
    accumulated (SGD, constant lr and weight decay, no mixup; the landmark features are the frames' mean)."""
    model = tiny_model("s2d_tiny_patch8_64", num_classes=3, num_frames=2, head_dropout=0.0)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.5, momentum=0.9, weight_decay=0.05)
    loader = torch.utils.data.DataLoader(list(zip(videos, labels, range(len(labels)))), batch_size=batch_size)

    def landmark(video):
        frames = video.transpose(1, 2).flatten(0, 1)
        return frames.mean(1, keepdim=True).expand(-1, model.landmark_channels, -1, -1)[..., ::8, ::8]

    train_one_epoch(model, landmark, F.cross_entropy, loader, optimizer, torch.device("cpu"), 0, steps_per_epoch=1,
                    update_freq=update_freq, lr_schedule=[0.5], wd_schedule=[0.05],
                    progress=ProgressLogger("test", stream=io.StringIO()))
    return model.state_dict()


@pytest.mark.slow
def test_gradient_accumulation_gives_the_update_of_the_doubled_batch():
    generator = torch.Generator().manual_seed(1)
    videos, labels = torch.randn(8, 3, 2, 64, 64, generator=generator), torch.tensor([0, 1, 2, 0, 1, 2, 0, 1])
    start = tiny_model("s2d_tiny_patch8_64", num_classes=3, num_frames=2, head_dropout=0.0).state_dict()
    doubled = one_update(8, 1, videos, labels)
    accumulated = one_update(4, 2, videos, labels)
    changed = [name for name in start if not torch.equal(start[name], doubled[name])]
    assert len(changed) > 0.9 * len(start)
    for name in start:
        torch.testing.assert_close(accumulated[name], doubled[name], rtol=1e-5, atol=1e-6)
    half = one_update(4, 1, videos, labels)  # one batch of 4 alone: a different update
    assert not torch.allclose(half["head.fc_cls.weight"], doubled["head.fc_cls.weight"], atol=1e-4)

import json
import warnings
from pathlib import Path

import pytest
import torch

from models.landmark import LandmarkFeatures
from models.mobilefacenet import MobileFaceNet

KEYS = json.loads((Path(__file__).parent / 'data' / 'keys_mobilefacenet.json').read_text())


def random_landmarks():
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        return LandmarkFeatures()


def align_corners_matrix(size_in, size_out):
    """Rows of linear-interpolation weights: output i samples input at i * (in - 1) / (out - 1)."""
    m = torch.zeros(size_out, size_in, dtype=torch.float64)
    for i in range(size_out):
        src = i * (size_in - 1) / (size_out - 1)
        lo = min(int(src), size_in - 2)
        frac = src - lo
        m[i, lo] += 1 - frac
        m[i, lo + 1] += frac
    return m


def test_mobilefacenet_layout_and_outputs():
    net = MobileFaceNet().eval()
    assert {k: list(v.shape) for k, v in net.state_dict().items()} == KEYS['keys']
    assert sum(p.numel() for p in net.parameters()) == KEYS['total_params']
    x = torch.randn(2, 3, 112, 112)
    with torch.no_grad():
        landmarks, feats = net(x)
        assert landmarks.shape == (2, 136) and feats.shape == (2, 128, 14, 14)
        assert torch.equal(feats, net.features(x))


def test_resizes_to_112_with_align_corners():
    lm = random_landmarks()
    video = torch.randn(1, 3, 2, 224, 200)
    frames = video.permute(0, 2, 1, 3, 4).reshape(2, 3, 224, 200).double()
    resized = align_corners_matrix(224, 112) @ frames @ align_corners_matrix(200, 112).T
    with torch.no_grad():
        expected = lm.net.features(resized.float())
    out = lm(video)
    assert out.shape == (2, 128, 14, 14)
    torch.testing.assert_close(out, expected, rtol=1e-4, atol=1e-4)


def test_112_input_is_not_resized_and_frames_are_in_b_t_order():
    lm = random_landmarks()
    video = torch.randn(2, 3, 3, 112, 112)
    out = lm(video)
    with torch.no_grad():
        assert torch.equal(out[1 * 3 + 2], lm.net.features(video[1:2, :, 2])[0])
        assert torch.equal(out, lm.net.features(video.permute(0, 2, 1, 3, 4).reshape(6, 3, 112, 112)))


def test_frozen_and_always_in_eval_mode():
    lm = random_landmarks()
    parent = torch.nn.ModuleList([lm, torch.nn.Linear(2, 2)])
    parent.train()
    assert not any(m.training for m in lm.modules()) and parent[1].training
    assert all(not p.requires_grad for p in lm.parameters())
    bn = lm.net.conv1.bn
    running_mean = bn.running_mean.clone()
    out = lm(torch.randn(1, 3, 2, 112, 112, requires_grad=True))
    assert not out.requires_grad and torch.equal(bn.running_mean, running_mean)


def test_random_weights_are_fixed_and_leave_the_global_rng_alone():
    torch.manual_seed(123)
    state = torch.get_rng_state()
    with pytest.warns(UserWarning, match='RANDOM'):
        first = LandmarkFeatures()
    assert torch.equal(torch.get_rng_state(), state)
    torch.manual_seed(999)
    second = random_landmarks()
    for (name, a), b in zip(first.state_dict().items(), second.state_dict().values()):
        assert torch.equal(a, b), name


def test_loads_authors_weight_file_layout(tmp_path):
    source = MobileFaceNet()
    path = tmp_path / 'mobilefacenet_model_best.pth.tar'
    torch.save({'state_dict': {f'module.{k}': v for k, v in source.state_dict().items()}, 'epoch': 3}, path)
    lm = LandmarkFeatures(weights=str(path))
    for name, value in source.state_dict().items():
        assert torch.equal(lm.net.state_dict()[name], value), name
    assert all(not p.requires_grad for p in lm.parameters())


def test_weight_file_without_state_dict_entry(tmp_path):
    path = tmp_path / 'weights.pth'
    torch.save({'model': {}}, path)
    with pytest.raises(ValueError, match=r'weights.pth.*state_dict.*\[.model.\]'):
        LandmarkFeatures(weights=path)


def test_missing_weight_file(tmp_path):
    path = tmp_path / 'nowhere.pth.tar'
    with pytest.raises(FileNotFoundError,
                       match=r'nowhere\.pth\.tar.*mobilefacenet_model_best\.pth\.tar.*landmark/.*ckpts/'):
        LandmarkFeatures(weights=str(path))

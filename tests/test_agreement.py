"""Agreement with PyTorch fp32 of every non-fp32 path `auto` can choose (inference/backends.py: bf16 on CPUs with
native bf16; OpenVINO and ONNX Runtime fp32), on a trained tiny video model: top-1 agreement >= 99% and mean
|probability difference| <= 0.01 (fp32 paths: within 1e-5), on 140 drawn test clips and on 100 windows of a real
photograph (matplotlib's grace_hopper.jpg) moving over a background. int8 is not among them: on the photo windows its
top-1 agreement is 95-98% (docs/BENCHMARKS.md), so `auto` never takes it."""
import argparse

import cv2
import numpy as np
import pytest
import torch

from datasets.synthetic import render_clip
from inference.backends import read_cpu
from inference.model import VideoModel
from models.checkpoint import load_checkpoint, save_checkpoint
from models.registry import build_model
from tests.helpers import ROOT
from tests.videos import PHOTO

FRAMES, SIZE = 4, 64
MIN_TOP1_AGREEMENT, MAX_MEAN_PROBABILITY_DIFFERENCE = 0.99, 0.01
NATIVE_BF16 = pytest.mark.skipif(not read_cpu().native_bf16, reason="auto takes bf16 only on a CPU with native bf16 "
                                                                    "(AMX or AVX512-BF16); this has none")
AUTO_PATHS = [pytest.param("torch", "bf16", marks=NATIVE_BF16), pytest.param("openvino", "bf16", marks=NATIVE_BF16),
              ("openvino", "fp32"), ("onnxruntime", "fp32")]


def trained_tiny_checkpoint(path):
    """s2d_tiny_patch8_64 with the trained weights of the shipped static checkpoint (ckpts/demo: 91% on drawn still
    faces), its classifier as the video head (the frames' class tokens averaged, then classified), the temporal
    adapters at their initialisation: no video-stage training, which takes minutes on 2 CPU cores."""
    torch.manual_seed(0)  # the temporal adapters' initialisation
    model = build_model("s2d_tiny_patch8_64", num_classes=7, num_frames=FRAMES)
    static = load_checkpoint(model, ROOT / "ckpts" / "demo" / "s2d_image_tiny_patch8_64_synthetic.pth", "pretrained")
    state = dict(model.state_dict(), **{"head.fc_cls.weight": static["model"]["head.weight"],
                                        "head.fc_cls.bias": static["model"]["head.bias"]})
    save_checkpoint({"model": state, "epoch": "best", "args": argparse.Namespace(
        model="s2d_tiny_patch8_64", num_frames=FRAMES, data_set="DFEW", scale_factor=0.25)}, path)
    return path


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    return trained_tiny_checkpoint(tmp_path_factory.mktemp("agreement") / "checkpoint.pth")


def drawn_clips(count=140):
    """Test clips drawn as datasets/synthetic.py draws them, 20 per class, from seeds the training data did not use."""
    return [np.stack([np.asarray(f.convert("RGB")) for f in render_clip(k % 7, FRAMES, SIZE,
                                                                      np.random.default_rng([7, k]))])
            for k in range(count)]


def photo_windows(count=100):
    """Windows of the photograph sliding and zooming over a grey-and-noise background, as crops of SIZE pixels."""
    rng = np.random.default_rng(0)
    windows = []
    for k in range(count):
        side, start = rng.integers(70, 120), rng.integers(0, 40, size=2)
        step = rng.integers(-6, 7, size=2)
        background = np.clip(rng.normal(110, 25, (160, 160, 3)), 0, 255).astype(np.uint8)
        face = cv2.resize(PHOTO, (side, int(side * PHOTO.shape[0] / PHOTO.shape[1])), interpolation=cv2.INTER_AREA)
        frames = []
        for t in range(FRAMES):
            frame = background.copy()
            x, y = np.clip(start + t * step, 0, [160 - face.shape[1], 160 - face.shape[0]])
            frame[y:y + face.shape[0], x:x + face.shape[1]] = face
            frames.append(cv2.cvtColor(cv2.resize(frame, (SIZE, SIZE), interpolation=cv2.INTER_AREA),
                                       cv2.COLOR_BGR2RGB))
        windows.append(np.stack(frames))
    return windows


def probabilities(video_model, clips, batch=16):
    return np.concatenate([video_model.classify(clips[i:i + batch]) for i in range(0, len(clips), batch)])


@pytest.fixture(scope="module")
def reference(trained):
    fp32 = VideoModel(trained, "random", "cpu", backend="torch", precision="fp32")
    clips = {"drawn": drawn_clips(), "photo": photo_windows()}
    return clips, {name: probabilities(fp32, c) for name, c in clips.items()}


def test_the_trained_model_has_learned_the_drawn_expressions(reference):
    """The comparison is made on a model whose predictions mean something, not on ties of an untrained one."""
    _, expected = reference
    labels = np.arange(140) % 7
    assert (expected["drawn"].argmax(1) == labels).mean() > 0.8  # chance: 1/7
    assert np.median(expected["drawn"].max(1)) > 0.4


@pytest.mark.parametrize("backend,precision", AUTO_PATHS)
def test_paths_auto_can_choose_agree_with_fp32(trained, reference, backend, precision):
    clips, expected = reference
    video_model = VideoModel(trained, "random", "cpu", backend=backend, precision=precision, log=lambda line: None)
    assert (video_model.backend.backend, video_model.backend.precision) == (backend, precision)
    for name, clip_set in clips.items():
        got = probabilities(video_model, clip_set)
        top1 = (got.argmax(1) == expected[name].argmax(1)).mean()
        mean_difference = np.abs(got - expected[name]).mean()
        print(f"{backend} {precision} on {name}: top-1 agreement {100 * top1:.1f}%, mean |dprob| {mean_difference:.2g}")
        assert top1 >= MIN_TOP1_AGREEMENT, f"{backend} {precision} on {name}: top-1 agreement {top1:.3f}"
        if precision == "fp32":
            assert np.abs(got - expected[name]).max() <= 1e-5
        else:
            assert 0 < mean_difference <= MAX_MEAN_PROBABILITY_DIFFERENCE, f"{name}: {mean_difference:.2g}"

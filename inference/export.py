"""The whole video model of a checkpoint (S2D fed by its MobileFaceNet landmark network) as one ONNX file, with
everything a user of the file needs in its metadata; and the cache folder of the exported files, keyed by the
checkpoint's and landmark weights' hashes and the versions of the libraries that wrote and run them."""
import hashlib
import json
import os
import warnings
from dataclasses import asdict
from importlib import metadata

import torch
from timm.data import IMAGENET_DEFAULT_MEAN, IMAGENET_DEFAULT_STD
from torch import nn

from utils.files import atomic_output

from .windows import window_policy

OPSET = 18
INPUT_NAME, OUTPUT_NAMES = "video", ("logits", "feature")
RUNTIME_PACKAGES = ("torch", "onnx", "onnxruntime", "openvino")


class WholeVideoModel(nn.Module):
    """`forward(video (N, 3, T, S, S) float32, normalised) -> (logits (N, K), feature (N, D))`: the landmark
    network's features of the same frames feed S2D's prompts, so one input holds all the model needs."""

    def __init__(self, model: nn.Module, landmark: nn.Module):
        super().__init__()
        self.model, self.landmark = model, landmark

    def forward(self, video):
        return self.model(video, self.landmark(video))


def file_sha256(path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def weights_sha256(landmark_weights) -> str:
    """The landmark weights' hash; 'random' (the fixed-seed network of the demo and tests) stands for itself."""
    return "random" if landmark_weights == "random" else file_sha256(landmark_weights)


def package_versions(names=RUNTIME_PACKAGES) -> dict:
    """{package: version or None when not installed}."""
    versions = {}
    for name in names:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return versions


def model_metadata(video_model, checkpoint_sha256: str, landmark_sha256: str) -> dict:
    """The ONNX file's metadata (string values; lists and dicts as JSON): how to feed the model and read its
    outputs, the window policy the analysis uses for it, and where it came from."""
    s = video_model.settings
    policy = window_policy(s.data_set, s.num_frames, clip_sampling=s.clip_sampling)
    fields = dict(
        input=(f"{INPUT_NAME}: float32 N x 3 x T x H x W, T = num_frames, H = W = input_size; RGB frames of a face "
               "crop resized to short_side_size, centre-cropped to input_size, scaled to [0, 1], then "
               "(x - mean) / std per channel"),
        outputs=("logits: N x K (softmax gives the class probabilities, in class_names' order); feature: N x D, "
                 "the clip feature the head classifies (the frames' final class tokens averaged over time)"),
        class_names=s.class_names, num_frames=s.num_frames, input_size=s.input_size,
        short_side_size=s.short_side_size, mean=list(IMAGENET_DEFAULT_MEAN), std=list(IMAGENET_DEFAULT_STD),
        window_policy=dict(asdict(policy), span_seconds=policy.span),
        clip_sampling=s.clip_sampling, model=s.model, data_set=s.data_set,
        checkpoint=os.path.basename(video_model.path), checkpoint_sha256=checkpoint_sha256,
        landmark_weights_sha256=landmark_sha256, exporter=package_versions(("torch", "onnx")), opset=OPSET)
    return {k: v if isinstance(v, str) else json.dumps(v) for k, v in fields.items()}


def export_onnx(video_model, path, checkpoint_sha256=None, landmark_sha256=None) -> str:
    """Write `video_model` (inference.model.VideoModel, float32 on the CPU) to `path` as one ONNX file with a
    dynamic batch dimension and the metadata of `model_metadata`; the ONNX checker passes on what is written."""
    import onnx

    s = video_model.settings
    whole = WholeVideoModel(video_model.model, video_model.landmark).eval()
    example = torch.zeros(1, 3, s.num_frames, s.input_size, s.input_size)
    batch = {0: "batch"}
    checkpoint_sha256 = checkpoint_sha256 or file_sha256(video_model.path)
    landmark_sha256 = landmark_sha256 or weights_sha256(video_model.landmark_weights)
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with atomic_output(path) as tmp_path:
        with warnings.catch_warnings(), torch.no_grad():
            # the TorchScript-based exporter: exact here and seconds instead of minutes for S2D base
            warnings.simplefilter("ignore")
            torch.onnx.export(whole, (example,), tmp_path, input_names=[INPUT_NAME], output_names=list(OUTPUT_NAMES),
                              opset_version=OPSET, dynamo=False,
                              dynamic_axes={name: batch for name in (INPUT_NAME, *OUTPUT_NAMES)})
        exported = onnx.load(tmp_path)
        for key, value in model_metadata(video_model, checkpoint_sha256, landmark_sha256).items():
            exported.metadata_props.add(key=key, value=value)
        onnx.checker.check_model(exported, full_check=True)
        onnx.save(exported, tmp_path)
    return str(path)


def default_cache_dir() -> str:
    """$S2D_CACHE, else $XDG_CACHE_HOME/s2d, else ~/.cache/s2d."""
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.environ.get("S2D_CACHE") or os.path.join(base, "s2d")


def cache_folder(video_model, cache_dir=None, cpu_name="") -> str:
    """The folder of `video_model`'s exported files and verification records: one per checkpoint, landmark
    weights, settings, speed-ups, library versions and CPU model, so nothing stale is ever reused."""
    checkpoint_sha256 = file_sha256(video_model.path)
    key = dict(checkpoint=checkpoint_sha256, landmark=weights_sha256(video_model.landmark_weights),
               settings=vars(video_model.settings), speedups=video_model.speedups, versions=package_versions(),
               cpu=cpu_name)
    digest = hashlib.sha256(json.dumps(key, sort_keys=True, default=str).encode()).hexdigest()[:16]
    folder = os.path.join(cache_dir or default_cache_dir(), f"{video_model.settings.model}-{digest}")
    os.makedirs(folder, exist_ok=True)
    return folder

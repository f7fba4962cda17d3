"""The fine-tuned S2D video model of a checkpoint, with its landmark network, class names and the
settings it was trained with; classifies batches of windows."""
import pickle
import threading
from argparse import Namespace

import numpy as np
import torch

from datasets.build import ALIASES, DATASETS, default_class_names
from datasets.transforms import ClipEvalTransform
from models.checkpoint import read_checkpoint
from models.fast_paths import EQUAL_SPEEDUPS, prepare_for_speed
from models.loading import build_model_and_landmark
from models.registry import MODEL_CONFIGS, is_image_model
from utils.device import inference_autocast_dtype

from .backends import load_backend, with_cpu_int8

DEFAULT_MODEL = "s2d_base_patch16_224"


class CheckpointError(ValueError):
    """The checkpoint or landmark weights cannot be used; the message names the file."""


def _video_models():
    return sorted(name for name in MODEL_CONFIGS if not is_image_model(name))


def _state_entry(state, suffix):
    return next((v for k, v in state.items() if k == suffix or k.endswith("." + suffix)), None)


def resolve_settings(path, checkpoint, model=None, data_set=None, num_frames=None, input_size=None,
                     short_side_size=None):
    """The model settings: the arguments given, else the checkpoint's stored args, else what its tensors say
    (frame count from `temporal_embedding`, class count from the head), else the defaults."""
    stored = checkpoint.get("args") or Namespace()
    state = checkpoint.get("model")
    if not isinstance(state, dict):
        raise CheckpointError(f"{path}: no 'model' state dict (found entries: {sorted(checkpoint)})")
    head, temporal = _state_entry(state, "head.fc_cls.weight"), _state_entry(state, "temporal_embedding")
    if head is None or temporal is None:
        raise CheckpointError(f"{path}: no head.fc_cls.weight / temporal_embedding in its model state dict: "
                              "not a fine-tuned S2D video model")

    def pick(value, name, default):
        return value if value is not None else getattr(stored, name, None) or default

    stored_model = getattr(stored, "model", None)
    # the authors' files name a model of the original code, which this registry does not know
    model = model or (stored_model if stored_model in _video_models() else DEFAULT_MODEL)
    if model not in _video_models():
        raise CheckpointError(f"unknown model {model!r}; known video models: {_video_models()}")
    img_size = MODEL_CONFIGS[model]["img_size"]
    settings = Namespace(model=model, num_classes=head.shape[0],
                         num_frames=pick(num_frames, "num_frames", temporal.shape[1]),
                         input_size=pick(input_size, "input_size", img_size),
                         data_set=pick(data_set, "data_set", None),
                         adapter_ratio=getattr(stored, "scale_factor", 0.25),
                         # how the clips of a data set made from one's own videos were sampled (FRAMES)
                         clip_sampling=None if data_set else getattr(stored, "clip_sampling", None),
                         # the detector whose crops the training clips were ("none": whole frames), a note on the data
                         clip_detector=getattr(stored, "clip_detector", None),
                         data_note=getattr(stored, "data_note", None))
    settings.short_side_size = pick(short_side_size, "short_side_size", settings.input_size)
    if settings.input_size != img_size or settings.short_side_size < settings.input_size:
        raise CheckpointError(f"{model} takes {img_size}x{img_size} frames; got input_size {settings.input_size}, "
                              f"short_side_size {settings.short_side_size} (must be >= input_size)")
    if settings.num_frames != temporal.shape[1]:
        raise CheckpointError(f"{path} was trained on {temporal.shape[1]} frames (its temporal_embedding); "
                              f"{settings.num_frames} asked for")
    settings.class_names = class_names_for(path, settings.data_set, settings.num_classes,
                                           None if data_set else getattr(stored, "class_names", None))
    return settings


def class_names_for(path, data_set, num_classes, stored_names=None):
    """The class names the checkpoint stores (trained with --class_names or a classes.txt), else `data_set`'s."""
    if stored_names:
        if len(stored_names) != num_classes:
            raise CheckpointError(f"{path} has a {num_classes}-class head, but stores {len(stored_names)} class "
                                  f"names ({', '.join(stored_names)})")
        return list(stored_names)
    if data_set is None:
        raise CheckpointError(f"{path} stores no data set name: pass --data_set (DFEW, FERV39K, MAFW; "
                              "FRAMES names the classes 0..K-1)")
    name = ALIASES.get(data_set, data_set)
    if name not in DATASETS:
        raise CheckpointError(f"unknown data set {data_set!r}; known: {sorted(DATASETS)}")
    names = default_class_names(name, num_classes)
    if len(names) != num_classes:
        raise CheckpointError(f"{path} has a {num_classes}-class head, but {data_set} has {len(names)} classes "
                              f"({', '.join(names)}); pass the --data_set it was trained on")
    return names


class VideoModel:
    """S2D and its landmark network on `device` (autocast on CUDA: bf16, or fp16 on GPUs without bf16; on the CPU
    the `backend` and `precision` of inference/backends.py, `cpu_int8` standing for PyTorch int8). `speedups`:
    models.fast_paths.EQUAL_SPEEDUPS (same outputs, faster); off for checking. `log`: where the backend choice
    reports what it does (exports, verification, fallbacks)."""

    def __init__(self, checkpoint_path, landmark_weights, device="cpu", cpu_int8=False, trust=False, speedups=True,
                 backend="auto", precision="auto", cache_dir=None, log=print, **overrides):
        self.path, self.device = str(checkpoint_path), torch.device(device)  # a str: summary.json records it
        try:
            checkpoint = read_checkpoint(checkpoint_path, trust=trust)
            self.settings = resolve_settings(checkpoint_path, checkpoint, **overrides)
            s = self.settings
            trained_with = getattr(checkpoint.get("args"), "landmark_weights", None)
            if trained_with == "random" and landmark_weights != "random":
                # the fixed-seed random network is part of a model trained with it: other weights do not fit
                log(f"note: {checkpoint_path} was trained with the random landmark network: it runs with it, not "
                    f"{landmark_weights}")
                landmark_weights = "random"
            self.class_names = s.class_names
            model, landmark = build_model_and_landmark(
                s.model, landmark_weights, (checkpoint_path, checkpoint), "finetuned", trust,
                num_classes=s.num_classes, num_frames=s.num_frames, adapter_ratio=s.adapter_ratio)
            del checkpoint
        except (OSError, ValueError, EOFError, pickle.UnpicklingError) as error:  # EOFError: an empty file
            raise CheckpointError(str(error) or f"{checkpoint_path}: empty or cut short") from error
        model, landmark = model.eval().to(self.device), landmark.to(self.device)
        self.feature_dim = model.embed_dim
        self.speedups = EQUAL_SPEEDUPS if speedups else ()
        prepare_for_speed(model, landmark, channels_last=self.device.type == "cuda", speedups=self.speedups)
        self.amp_dtype = inference_autocast_dtype(self.device)
        self.model, self.landmark, self.landmark_weights = model, landmark, landmark_weights  # fp32
        self.transform = ClipEvalTransform(s.input_size, s.short_side_size)
        self.run, self.backend = load_backend(self, *with_cpu_int8(cpu_int8, backend, precision), cache_dir, log)
        self.running = threading.Lock()  # one forward pass at a time (a live stream and a file may share the model)

    def classify(self, clips: list[np.ndarray]) -> np.ndarray:
        """Class probabilities (N, K) of N clips of RGB uint8 crops (T, S, S, 3), S = short_side_size."""
        return self.classify_and_embed(clips)[0]

    def inputs(self, clips: list[np.ndarray]) -> torch.Tensor:
        """The model's input (N, 3, T, input_size, input_size) of N clips of RGB uint8 crops (T, S, S, 3)."""
        return torch.stack([self.transform(torch.from_numpy(c).permute(0, 3, 1, 2)) for c in clips])

    @torch.inference_mode()
    def classify_and_embed(self, clips: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        """Class probabilities (N, K) and clip features (N, feature_dim) float32 of N clips: the feature is what
        the head classifies, the frames' final class tokens (after the last norm) averaged over time."""
        inputs = self.inputs(clips).to(self.device, non_blocking=True)
        with self.running:
            logits, features = self.run(inputs)
        return logits.softmax(dim=-1).cpu().numpy(), features.cpu().numpy()

"""torch.hub entry points: the authors' released fine-tuned S2D checkpoints (the Hugging Face repository that
scripts/download_checkpoints.py fetches from), each returned ready to use.

    model = torch.hub.load("path/to/this/clone", "dfew", source="local", fold=1)   # inference.model.VideoModel
    model.class_names, model.transform, model.landmark                            # what it needs is included
    probabilities, features = model.classify_and_embed([crops])                   # crops: (T, S, S, 3) RGB uint8
    model = torch.hub.load("path/to/this/clone", "dfew", source="local", backend="openvino", precision="fp32")
    model.backend                                  # what runs the model and why (inference.backends.Choice)
    analyzer = torch.hub.load("path/to/this/clone", "mafw", source="local", fold=3, analyzer=True)
    analyzer.analyze("interview.mp4", "output/interview")                         # inference.Analyzer

Every entry point takes `fold` (DFEW, MAFW: 1..5), `analyzer` (return an inference.Analyzer, which finds, tracks
and crops the faces of raw videos, instead of the model alone), `filename` (the checkpoint's path in the
repository, when the fold's name is ambiguous), `revision`, `cache_dir` (the Hugging Face cache; with
HF_HUB_OFFLINE=1 only the cache is used), `landmark_weights` (default: ckpts/mobilefacenet_model_best.pth.tar of
this clone, else downloaded once from the original S2D repository into torch.hub's folder), and the other
arguments of inference.Analyzer (`device`, `backend` and `precision` as predict.py's --backend and --precision,
`cpu_int8`, `trust_checkpoint` for a file holding more than tensors, `detector`, `options`, ...; docs/PREDICT.md).
Errors are one-line exceptions: ValueError for a file name that does not resolve, inference.AnalysisError for a
checkpoint that cannot be used.
"""
import os

dependencies = ["torch", "timm", "einops", "cv2", "huggingface_hub"]

LANDMARK_URL = "https://github.com/MSA-LMC/S2D/raw/main/landmark/mobilefacenet_model_best.pth.tar"


def dfew(fold=1, analyzer=False, **settings):
    """S2D fine-tuned on DFEW fold `fold` (1..5): 7 classes, 16 frames spread over a clip."""
    return _load("DFEW", fold, analyzer, settings)


def ferv39k(analyzer=False, **settings):
    """S2D fine-tuned on FERV39K: 7 classes, 16 consecutive frames."""
    return _load("FERV39K", None, analyzer, settings)


def mafw(fold=1, analyzer=False, **settings):
    """S2D fine-tuned on MAFW fold `fold` (1..5): 11 classes, 16 consecutive frames."""
    return _load("MAFW", fold, analyzer, settings)


def _load(data_set, fold, analyzer, settings):
    from huggingface_hub import hf_hub_download

    from inference import Analyzer
    from models.released import REPO, released_file, repo_files

    revision, cache_dir = settings.pop("revision", None), settings.pop("cache_dir", None)
    if fold is not None and fold not in range(1, 6):
        raise ValueError(f"fold must be 1..5, got {fold!r}")
    filename = settings.pop("filename", None) or released_file(repo_files(REPO, revision, cache_dir), data_set, fold)
    checkpoint = hf_hub_download(REPO, filename, revision=revision, cache_dir=cache_dir)
    landmark_weights = settings.pop("landmark_weights", None) or _landmark_weights()
    if not analyzer:
        settings.setdefault("detector", "none")  # the model alone: no face detector to load
    loaded = Analyzer(checkpoint, landmark_weights=landmark_weights, data_set=data_set, **settings)
    return loaded if analyzer else loaded.model


def _landmark_weights():
    """This clone's ckpts/mobilefacenet_model_best.pth.tar, else the original repository's, downloaded once."""
    import torch

    from models.landmark import DEFAULT_LANDMARK_WEIGHTS

    local = os.path.join(os.path.dirname(os.path.abspath(__file__)), DEFAULT_LANDMARK_WEIGHTS)
    if os.path.isfile(local):
        return local
    cached = os.path.join(torch.hub.get_dir(), "checkpoints", os.path.basename(LANDMARK_URL))
    if not os.path.isfile(cached):
        os.makedirs(os.path.dirname(cached), exist_ok=True)
        torch.hub.download_url_to_file(LANDMARK_URL, cached)
    return cached

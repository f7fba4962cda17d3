"""Clip embeddings (predict.py --features, the Python API, corpus mode): features.npy has a row per
predictions.csv row in its order, each the feature the model's head classifies; and the torch.hub entry points,
loaded offline from a Hugging Face cache and landmark weights the test writes."""
import csv
import json
import subprocess
import sys

import cv2
import numpy as np
import pytest
import torch

import predict
from datasets.classes import DFEW_CLASSES, FERV39K_CLASSES, MAFW_CLASSES
from datasets.transforms import ClipEvalTransform
from inference import Options, analyze_video
from inference.align import face_crop
from inference.faces import Faces, WholeFrame
from inference.outputs import FeatureWriter
from models.checkpoint import load_checkpoint
from models.landmark import build_landmark
from models.mobilefacenet import MobileFaceNet
from models.registry import build_model
from scripts.make_synthetic_video import write_video
from tests.helpers import ENV, ROOT, fake_hub_cache, tiny_checkpoint

pytestmark = pytest.mark.filterwarnings("ignore:LandmarkFeatures")
FPS = 8.0


def rows_of(output_dir):
    with open(output_dir / "predictions.csv", newline="") as handle:
        return list(csv.DictReader(handle))


@pytest.fixture(scope="module")
def video(tmp_path_factory):
    path = tmp_path_factory.mktemp("video") / "synthetic.mp4"
    write_video(path, ["happy", "surprise"], 6, 64, FPS, seed=0)
    return path


def test_a_row_is_the_model_feature_of_its_window_recomputed_directly(video, checkpoint, tmp_path):
    result = analyze_video(str(video), str(checkpoint), str(tmp_path / "out"), landmark_weights="random",
                           device="cpu", detector="none", backend="torch", precision="fp32",
                           options=Options(source_fps=FPS, write_video=False, features=True))
    features, rows = np.load(result.features_npy), rows_of(tmp_path / "out")
    assert features.dtype == np.float32 and features.shape == (len(rows), 192) and len(rows) == 5
    capture = cv2.VideoCapture(str(video))
    frames = [capture.read()[1] for _ in range(12)]
    model = build_model("s2d_tiny_patch8_64", num_classes=7, num_frames=4)
    load_checkpoint(model, checkpoint, "finetuned")
    model.eval()
    landmark = build_landmark("random", grid_size=model.grid_size)
    for k in (0, len(rows) - 1):
        first, last = int(rows[k]["first_frame"]), int(rows[k]["last_frame"])
        crops = [cv2.cvtColor(face_crop(f, np.array([0, 0, 64, 64]), None, 64, 0.0)[0], cv2.COLOR_BGR2RGB)
                 for f in frames[first:last + 1]]
        clip = ClipEvalTransform(64, 64)(torch.from_numpy(np.stack(crops)).permute(0, 3, 1, 2))[None]
        with torch.no_grad():
            logits, feature = model(clip, landmark(clip))
        assert np.abs(features[k] - feature[0].numpy()).max() < 1e-5
        probabilities = logits.softmax(-1)[0].numpy()
        assert probabilities == pytest.approx([float(rows[k][n]) for n in DFEW_CLASSES], abs=2e-6)


def test_rows_follow_predictions_order_across_tracks_and_smoothing(video, checkpoint, tmp_path, monkeypatch):
    """Two faces (the frame's halves) and --smooth 3, which emits a track's rows late: each row's feature is still
    its own window's, whose head gives that window's unsmoothed probabilities."""
    monkeypatch.setattr(WholeFrame, "__call__",
                        lambda self, frame: Faces.without_landmarks([[0, 0, 32, 64], [32, 0, 32, 64]]))
    flags = ["--video", str(video), "--checkpoint", str(checkpoint), "--landmark_weights", "random", "--device",
             "cpu", "--no_detect", "--source_fps", str(FPS), "--no_video", "--features", "--backend", "torch",
             "--precision", "fp32"]
    assert predict.run([*flags, "--output_dir", str(tmp_path / "raw")]) == 0
    assert predict.run([*flags, "--output_dir", str(tmp_path / "smooth"), "--smooth", "3"]) == 0
    raw = {(r["track"], r["first_frame"]): [float(r[n]) for n in DFEW_CLASSES] for r in rows_of(tmp_path / "raw")}
    rows, features = rows_of(tmp_path / "smooth"), np.load(tmp_path / "smooth" / "features.npy")
    assert len(rows) == len(features) == len(raw) == 10 and {r["track"] for r in rows} == {"1", "2"}
    state = torch.load(checkpoint, weights_only=False)["model"]
    logits = torch.from_numpy(features) @ state["head.fc_cls.weight"].T + state["head.fc_cls.bias"]
    for row, probabilities in zip(rows, logits.softmax(-1).numpy()):
        assert probabilities == pytest.approx(raw[row["track"], row["first_frame"]], abs=2e-6)


def test_corpus_mode_writes_features_per_video(video, checkpoint, tmp_path):
    other = tmp_path / "other.mp4"
    write_video(other, ["sad", "angry", "fear"], 6, 64, FPS, seed=1)
    code = predict.run(["--videos", str(video), str(other), "--checkpoint", str(checkpoint), "--output_dir",
                        str(tmp_path / "corpus"), "--landmark_weights", "random", "--device", "cpu", "--no_detect",
                        "--source_fps", str(FPS), "--no_video", "--features"])
    assert code == 0
    folders = [p for p in (tmp_path / "corpus").iterdir() if p.is_dir()]
    assert len(folders) == 2
    for folder in folders:
        assert sorted(p.name for p in folder.iterdir()) == ["features.npy", "predictions.csv", "summary.json",
                                                            "timeline.png"]
        assert np.load(folder / "features.npy").shape == (len(rows_of(folder)), 192)
    assert json.loads((tmp_path / "corpus" / "corpus.json").read_text())["options"]["features"] is True


def test_feature_writer_streams_rows_into_a_valid_npy(tmp_path):
    writer = FeatureWriter(str(tmp_path / "empty.npy"), 3)
    writer.close()
    assert np.load(tmp_path / "empty.npy").shape == (0, 3)
    writer = FeatureWriter(str(tmp_path / "rows.npy"), 3)
    rows = np.random.default_rng(0).standard_normal((1000, 3))
    for row in rows:
        writer.add(row)
    writer.close()
    assert np.array_equal(np.load(tmp_path / "rows.npy"), rows.astype(np.float32))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["empty.npy", "rows.npy"]


HUB_SCRIPT = """
import json, sys, numpy as np, torch
root, cache, landmark = sys.argv[1:]
settings = dict(source="local", cache_dir=cache, landmark_weights=landmark, device="cpu")
sys.path.insert(0, root)
import hubconf  # what torch.hub.list lists (it reads GitHub repositories only): the public callables
out = dict(entries=sorted(n for n in dir(hubconf) if callable(getattr(hubconf, n)) and not n.startswith("_")))
model = torch.hub.load(root, "dfew", fold=2, **settings)
crops = np.random.default_rng(0).integers(0, 256, (4, 64, 64, 3), dtype=np.uint8)
probabilities, features = model.classify_and_embed([crops])
out["dfew"] = dict(type=type(model).__name__, path=model.path, names=model.class_names,
                   sum=float(probabilities.sum()), features=list(features.shape),
                   transform=type(model.transform).__name__, landmark=type(model.landmark).__name__)
analyzer = torch.hub.load(root, "mafw", fold=3, analyzer=True, **settings)
out["mafw"] = dict(type=type(analyzer).__name__, path=analyzer.model.path, names=analyzer.model.class_names)
out["ferv39k"] = torch.hub.load(root, "ferv39k", **settings).class_names
try:
    torch.hub.load(root, "mafw", fold=4, **settings)
except ValueError as error:
    out["missing"] = str(error)
print(json.dumps(out))
"""


@pytest.mark.slow
def test_hub_entry_points_load_released_checkpoints_offline(tmp_path):
    checkpoints = {"DFEW/dfew_fold1.pth": ("DFEW", 7), "DFEW/dfew_fold2.pth": ("DFEW", 7),
                   "MAFW/mafw_fold3.pth": ("MAFW", 11), "FERV39K/ferv39k.pth": ("FERV39K", 7)}
    files = {"pretrain-AffectNet-7.pth": b"static"}
    for name, (data_set, classes) in checkpoints.items():
        files[name] = tiny_checkpoint(tmp_path / "made.pth", data_set=data_set, num_classes=classes).read_bytes()
    fake_hub_cache(tmp_path / "hub", files)
    torch.manual_seed(0)
    torch.save({"state_dict": MobileFaceNet().state_dict()}, tmp_path / "mobilefacenet.pth.tar")
    result = subprocess.run([sys.executable, "-c", HUB_SCRIPT, str(ROOT), str(tmp_path / "hub"),
                             str(tmp_path / "mobilefacenet.pth.tar")], cwd=tmp_path,
                            env={**ENV, "HF_HUB_OFFLINE": "1"}, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    out = json.loads(result.stdout.strip().splitlines()[-1])
    assert out["entries"] == ["dfew", "ferv39k", "mafw"]
    dfew = out["dfew"]
    assert dfew["type"] == "VideoModel" and dfew["path"].endswith("DFEW/dfew_fold2.pth")
    assert dfew["names"] == list(DFEW_CLASSES) and dfew["sum"] == pytest.approx(1, abs=1e-5)
    assert (dfew["features"], dfew["transform"], dfew["landmark"]) == ([1, 192], "ClipEvalTransform",
                                                                      "LandmarkFeatures")
    assert out["mafw"] == dict(type="Analyzer", path=out["mafw"]["path"], names=list(MAFW_CLASSES))
    assert out["mafw"]["path"].endswith("MAFW/mafw_fold3.pth") and out["ferv39k"] == list(FERV39K_CLASSES)
    assert out["missing"].startswith("MAFW fold 4: expected one checkpoint in the repository, found none; pass "
                                     "filename=") and "MAFW/mafw_fold3.pth" in out["missing"]

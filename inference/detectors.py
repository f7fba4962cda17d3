"""The face detectors by name (inference.faces, inference.mtcnn) and the crop margin each gets by default."""
from .faces import HaarDetector, WholeFrame, YuNetDetector
from .mtcnn import MTCNNDetector

DETECTORS = ("mtcnn", "haar", "yunet", "none")
DEFAULT_MARGIN = {"mtcnn": 0.0, "yunet": 0.0, "haar": 0.25, "none": 0.0}  # the crop around the detector's box


def build_detector(name, model_path="", min_face=40, device="cpu"):
    """The detector called `name` (one of DETECTORS; "none": the whole frame); inference.faces.DetectorError when
    it cannot be built, ValueError for an unknown name."""
    if name == "none":
        return WholeFrame()
    if name == "haar":
        return HaarDetector(min_face)
    if name == "yunet":
        return YuNetDetector(model_path, min_face)
    if name == "mtcnn":
        return MTCNNDetector(min_face, device=device)
    raise ValueError(f"unknown detector {name!r}; choose from {DETECTORS}")


def crop_margin(margin, detector_name):
    """The crop margin: `margin`, or the detector's default when it is None."""
    return margin if margin is not None else DEFAULT_MARGIN[detector_name]

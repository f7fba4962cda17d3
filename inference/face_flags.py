"""The face detection, tracking and cropping flags that predict.py and scripts/extract_clips.py share."""
from .detectors import DETECTORS
from .pipeline import Options


def add_face_arguments(parser):
    """Add the "faces" flags to `parser`; returns their group."""
    defaults = Options()
    g = parser.add_argument_group("faces")
    g.add_argument("--detector", default="mtcnn", choices=[n for n in DETECTORS if n != "none"],
                   help="mtcnn: boxes and eye landmarks, eye-level crops (default); haar: OpenCV's cascade, "
                        "unaligned; yunet: OpenCV's YuNet with --detector_model")
    g.add_argument("--detector_model", default="", help="YuNet ONNX file for --detector yunet")
    g.add_argument("--no_detect", action="store_true", help="the whole frame is the face (face-cropped clips)")
    g.add_argument("--min_face", default=40, type=int, help="smallest face side in pixels")
    g.add_argument("--margin", default=None, type=float,
                   help="the crop: the box enlarged by margin times its width and height on each side, eyes "
                        "levelled (mtcnn, yunet); without landmarks (haar, --no_detect) a square of side "
                        "(1 + 2 * margin) * longer box side around its centre (default 0 for mtcnn/yunet, as the "
                        "MAFW crops; 0.25 for haar)")
    g.add_argument("--iou_threshold", default=defaults.iou_threshold, type=float,
                   help="overlap with a track's predicted box that continues it")
    g.add_argument("--max_gap_seconds", default=defaults.max_gap_seconds, type=float,
                   help="a face absent this long keeps its track id when it returns where its motion leads")
    g.add_argument("--break_seconds", default=defaults.break_seconds, type=float,
                   help="no window spans an absence longer than this")
    g.add_argument("--min_track_frames", default=defaults.min_track_frames, type=int,
                   help="detections before a track counts (shorter ones are dropped as false positives)")
    return g


def detector_name(args):
    """The detector the face flags ask for ("none" with --no_detect)."""
    return "none" if args.no_detect else args.detector

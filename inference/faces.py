"""Face detectors: each maps a BGR frame to `Faces` (boxes, scores and, where the detector gives them, five
landmarks). Boxes are float arrays (x, y, w, h) in frame pixels.
"""
import os
from dataclasses import dataclass

import cv2
import numpy as np

HAAR_CASCADE = "haarcascade_frontalface_default.xml"
DETECTION_MAX_SIDE = 640  # frames are detected at most this large (speed); boxes are scaled back


class DetectorError(ValueError):
    """The face detector cannot be built; the message names the file."""


@dataclass
class Faces:
    """The faces found in one frame. `landmarks` (N, 5, 2): the eye, then the other eye, nose tip, mouth corner,
    other mouth corner, the first of each pair on the image's left when the face is upright; None for detectors
    without landmarks (Haar, whole frame)."""
    boxes: np.ndarray  # (N, 4) float64, x, y, w, h
    scores: np.ndarray  # (N,) float64
    landmarks: np.ndarray | None = None

    def __len__(self):
        return len(self.boxes)

    @classmethod
    def without_landmarks(cls, boxes):
        boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
        return cls(boxes, np.ones(len(boxes)))


class HaarDetector:
    """OpenCV's frontal-face Haar cascade, shipped inside the opencv-python wheel."""

    def __init__(self, min_face: int):
        path = os.path.join(cv2.data.haarcascades, HAAR_CASCADE)
        self.cascade = cv2.CascadeClassifier(path)
        if self.cascade.empty():
            raise DetectorError(f"cannot load OpenCV's Haar cascade {path}")
        self.min_face = min_face

    def __call__(self, frame: np.ndarray) -> Faces:
        scale = min(1.0, DETECTION_MAX_SIDE / max(frame.shape[:2]))
        gray = cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY)
        if scale < 1:
            gray = cv2.resize(gray, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
        gray = cv2.equalizeHist(gray)
        min_side = max(int(self.min_face * scale), 8)
        boxes = self.cascade.detectMultiScale(gray, scaleFactor=1.1, minNeighbors=5, minSize=(min_side, min_side))
        return Faces.without_landmarks(np.asarray(boxes, dtype=np.float64).reshape(-1, 4) / scale)


class YuNetDetector:
    """`cv2.FaceDetectorYN` with a YuNet ONNX file supplied by the user."""

    def __init__(self, model_path: str, min_face: int, score_threshold: float = 0.7):
        if not model_path or not os.path.isfile(model_path):
            raise DetectorError(f"--detector yunet needs --detector_model, the YuNet ONNX file "
                                f"(face_detection_yunet_*.onnx from the OpenCV model zoo); not found: {model_path!r}")
        try:
            self.detector = cv2.FaceDetectorYN.create(model_path, "", (320, 320), score_threshold)
        except cv2.error as error:
            raise DetectorError(f"{model_path}: OpenCV cannot load it as a YuNet model: {error}") from error
        self.min_face = min_face

    def __call__(self, frame: np.ndarray) -> Faces:
        self.detector.setInputSize((frame.shape[1], frame.shape[0]))
        _, found = self.detector.detect(frame)
        found = np.zeros((0, 15)) if found is None else found.astype(np.float64)
        # a row: box (4), the person's right eye, left eye, nose, right and left mouth corner (10), score;
        # the person's right is the image's left of an upright face
        landmarks = found[:, 4:14].reshape(-1, 5, 2)
        keep = np.minimum(found[:, 2], found[:, 3]) >= self.min_face
        return Faces(found[keep, :4], found[keep, 14], landmarks[keep])


class WholeFrame:
    """`--no_detect`: the whole frame is the face (face-cropped clips such as DFEW's)."""

    def __call__(self, frame: np.ndarray) -> Faces:
        return Faces.without_landmarks([0.0, 0.0, frame.shape[1], frame.shape[0]])


def square_crop(frame: np.ndarray, box: np.ndarray, margin: float) -> np.ndarray:
    """The square of side (1 + 2 * margin) * max(w, h) centred on the box; black outside the frame."""
    x, y, w, h = box
    side = max(1, round((1 + 2 * margin) * max(w, h)))
    left, top = round(x + w / 2 - side / 2), round(y + h / 2 - side / 2)
    crop = np.zeros((side, side, 3), dtype=frame.dtype)
    x0, y0 = max(left, 0), max(top, 0)
    x1, y1 = min(left + side, frame.shape[1]), min(top + side, frame.shape[0])
    if x1 > x0 and y1 > y0:
        crop[y0 - top:y1 - top, x0 - left:x1 - left] = frame[y0:y1, x0:x1]
    return crop


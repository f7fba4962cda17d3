"""Face detection (OpenCV), tracking by box overlap, and the square face crops fed to the model.

Boxes are float arrays (x, y, w, h) in frame pixels.
"""
import os
from dataclasses import dataclass, field

import cv2
import numpy as np

HAAR_CASCADE = "haarcascade_frontalface_default.xml"
DETECTION_MAX_SIDE = 640  # frames are detected at most this large (speed); boxes are scaled back


class DetectorError(ValueError):
    """The face detector cannot be built; the message names the file."""


class HaarDetector:
    """OpenCV's frontal-face Haar cascade, shipped inside the opencv-python wheel."""

    def __init__(self, min_face: int):
        path = os.path.join(cv2.data.haarcascades, HAAR_CASCADE)
        self.cascade = cv2.CascadeClassifier(path)
        if self.cascade.empty():
            raise DetectorError(f"cannot load OpenCV's Haar cascade {path}")
        self.min_face = min_face

    def __call__(self, frame: np.ndarray) -> np.ndarray:
        scale = min(1.0, DETECTION_MAX_SIDE / max(frame.shape[:2]))
        gray = cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY)
        if scale < 1:
            gray = cv2.resize(gray, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
        gray = cv2.equalizeHist(gray)
        min_side = max(int(self.min_face * scale), 8)
        boxes = self.cascade.detectMultiScale(gray, scaleFactor=1.1, minNeighbors=5, minSize=(min_side, min_side))
        return np.asarray(boxes, dtype=np.float64).reshape(-1, 4) / scale


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

    def __call__(self, frame: np.ndarray) -> np.ndarray:
        self.detector.setInputSize((frame.shape[1], frame.shape[0]))
        _, faces = self.detector.detect(frame)
        boxes = np.zeros((0, 4)) if faces is None else faces[:, :4].astype(np.float64)
        return boxes[np.minimum(boxes[:, 2], boxes[:, 3]) >= self.min_face]


class WholeFrame:
    """`--no_detect`: the whole frame is the face (face-cropped clips such as DFEW's)."""

    def __call__(self, frame: np.ndarray) -> np.ndarray:
        return np.array([[0.0, 0.0, frame.shape[1], frame.shape[0]]])


def box_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU of every box of `a` (N, 4) with every box of `b` (M, 4): (N, M)."""
    a_end, b_end = a[:, None, :2] + a[:, None, 2:], b[None, :, :2] + b[None, :, 2:]
    overlap = np.clip(np.minimum(a_end, b_end) - np.maximum(a[:, None, :2], b[None, :, :2]), 0, None)
    intersection = overlap[..., 0] * overlap[..., 1]
    union = (a[:, 2] * a[:, 3])[:, None] + (b[:, 2] * b[:, 3])[None, :] - intersection
    return intersection / np.maximum(union, 1e-9)


@dataclass(eq=False)
class Track:
    """One face over time. `track_id` is given once the track is confirmed (1, 2, ... in that order)."""
    box: np.ndarray
    last_frame: int
    hits: int = 1
    track_id: int | None = None
    missed: list = field(default_factory=list)  # frame indices since the last detection


class FaceTracker:
    """Greedy IoU matching of detections to tracks, frame by frame.

    A track survives up to `max_gap` processed frames without a detection; when it is found again,
    its box in the missed frames is interpolated linearly. A track is confirmed (gets an id) after
    `min_hits` detections; unconfirmed tracks that end are dropped (detector false positives).
    `update` returns the observations (track, frame index, box) to crop, in frame order per track,
    and the tracks that ended.
    """

    def __init__(self, iou_threshold: float = 0.3, max_gap: int = 5, min_hits: int = 3):
        self.iou_threshold, self.max_gap, self.min_hits = iou_threshold, max_gap, min_hits
        self.active: list[Track] = []
        self.num_confirmed = 0
        self.num_dropped = 0

    def update(self, frame_index: int, boxes: np.ndarray):
        observations, ended = [], []
        boxes = list(boxes)
        matched = self._match(boxes)
        for track, box in matched:
            observations += self._interpolate_missed(track, box)
            track.box, track.last_frame, track.missed = box, frame_index, []
            track.hits += 1
            self._confirm(track)
            observations.append((track, frame_index, box))
        matched_tracks = {id(t) for t, _ in matched}
        matched_boxes = {id(b) for _, b in matched}
        for track in self.active:
            if id(track) not in matched_tracks:
                track.missed.append(frame_index)
                if len(track.missed) > self.max_gap:
                    ended.append(track)
        for box in boxes:
            if id(box) not in matched_boxes:
                track = Track(box=box, last_frame=frame_index)
                self._confirm(track)
                self.active.append(track)
                observations.append((track, frame_index, box))
        for track in ended:
            self._end(track)
        return observations, ended

    def finish(self):
        """End every active track (end of the video); returns them."""
        ended = list(self.active)
        for track in ended:
            self._end(track)
        return ended

    def _match(self, boxes):
        if not self.active or not boxes:
            return []
        iou = box_iou(np.stack([t.box for t in self.active]), np.stack(boxes))
        pairs = []
        while iou.size and iou.max() >= self.iou_threshold:
            i, j = np.unravel_index(iou.argmax(), iou.shape)
            pairs.append((self.active[i], boxes[j]))
            iou[i, :], iou[:, j] = -1, -1
        return pairs

    def _interpolate_missed(self, track, box):
        span = [track.last_frame] + track.missed
        total = len(track.missed) + 1
        return [(track, frame, track.box + (box - track.box) * (k / total))
                for k, frame in enumerate(span[1:], start=1)]

    def _confirm(self, track):
        if track.track_id is None and track.hits >= self.min_hits:
            self.num_confirmed += 1
            track.track_id = self.num_confirmed

    def _end(self, track):
        self.active.remove(track)
        if track.track_id is None:
            self.num_dropped += 1


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

"""Face crops for the model: rotated so that the eyes are level where the detector gives landmarks."""
import math

import cv2
import numpy as np

from inference.faces import square_crop


def aligned_crop(frame: np.ndarray, landmarks: np.ndarray, box: np.ndarray, size: int,
                 margin: float) -> tuple[np.ndarray, float]:
    """The face with its eyes level, `size` x `size` BGR, and the rotation applied (degrees, counter-clockwise as
    seen; the eye line's angle below the horizontal).

    The convention is that of the preprocessing script of S2D's authors' follow-up repository MSA-LMC/S4D
    (finetune/process/mtcnn.py), which most likely made the MAFW frames S2D was trained on: MTCNN on the frame, the
    most confident face, its box cut out (not squared), rotated about its centre so that the line between the eyes
    is level, resized to 224 x 224 (so a box taller than wide is stretched sideways, as in those frames). Here one
    affine warp samples the frame directly: the box enlarged by `margin` of its width and height on each side,
    rotated about its centre by the eye line's angle (first to second eye landmark), scaled to `size` x `size`.
    S4D rotates the already-cut box, so its corners are black; here they hold the frame's pixels, and only what lies
    outside the frame is black.
    """
    x, y, w, h = box
    (left_x, left_y), (right_x, right_y) = landmarks[0], landmarks[1]
    angle = math.degrees(math.atan2(right_y - left_y, right_x - left_x))
    # OpenCV puts pixel centres on integers: the box's centre and the output's centre are half a pixel in
    centre = np.array([x + w / 2 - 0.5, y + h / 2 - 0.5])
    scale = np.diag([size / ((1 + 2 * margin) * w), size / ((1 + 2 * margin) * h)])
    rotation = cv2.getRotationMatrix2D(tuple(centre), angle, 1.0)[:, :2]
    linear = scale @ rotation
    matrix = np.hstack([linear, (size / 2 - 0.5 - linear @ centre)[:, None]])
    crop = cv2.warpAffine(frame, matrix, (size, size), flags=cv2.INTER_LINEAR,
                          borderMode=cv2.BORDER_CONSTANT, borderValue=0)
    return crop, angle


def face_crop(frame: np.ndarray, box: np.ndarray, landmarks: np.ndarray | None, size: int,
              margin: float) -> tuple[np.ndarray, float]:
    """The crop callers use: `aligned_crop` when the detector gave landmarks (the face's (5, 2) array), else the
    unrotated `square_crop` resized to `size` (rotation 0)."""
    if landmarks is not None:
        return aligned_crop(frame, landmarks, box, size, margin)
    return cv2.resize(square_crop(frame, box, margin), (size, size), interpolation=cv2.INTER_AREA), 0.0

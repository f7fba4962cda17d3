"""Face crops for the model: rotated so that the eyes are level where the detector gives landmarks."""
import math

import cv2
import numpy as np

from inference.faces import square_crop


def aligned_crop(frame: np.ndarray, landmarks: np.ndarray, box: np.ndarray, size: int,
                 margin: float) -> tuple[np.ndarray, float]:
    """The face with its eyes level, `size` x `size` BGR, and the rotation applied (degrees, counter-clockwise as
    seen; the eye line's angle below the horizontal).

    MAFW's frames as S2D's authors trained on them were most likely made as in the preprocessing script of their
    follow-up repository MSA-LMC/S4D (finetune/process/mtcnn.py): MTCNN on the frame, the most confident face, its
    box cut out, the cut rotated about its centre so that the line between the eyes is level, resized to 224.
    Here one affine warp samples the frame directly: the square of side (1 + 2 * margin) * max(w, h) centred on the
    box, rotated about its centre by the eye line's angle (first to second eye landmark), scaled to `size`. S4D
    rotates the already-cut (unsquared, marginless) box, so its corners are black; here they hold the frame's
    pixels, and only what lies outside the frame is black.
    """
    x, y, w, h = box
    (left_x, left_y), (right_x, right_y) = landmarks[0], landmarks[1]
    angle = math.degrees(math.atan2(right_y - left_y, right_x - left_x))
    side = (1 + 2 * margin) * max(w, h)
    # OpenCV puts pixel centres on integers: the box's centre and the output's centre are half a pixel in
    centre = (x + w / 2 - 0.5, y + h / 2 - 0.5)
    matrix = cv2.getRotationMatrix2D(centre, angle, size / side)
    matrix[:, 2] += size / 2 - 0.5 - np.asarray(centre)
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

import importlib.util
import math
import re
from types import SimpleNamespace

import cv2
import matplotlib.cbook
import numpy as np
import pytest
import torch

from inference.align import aligned_crop, face_crop
from inference.faces import DetectorError, HaarDetector, square_crop
from inference.mtcnn import MTCNNDetector, crops

CROP_SIZE, MARGIN = 224, 0.25


@pytest.fixture(scope="module")
def detector():
    return MTCNNDetector(min_face=40)


@pytest.fixture(scope="module")
def photo():
    return cv2.imread(matplotlib.cbook.get_sample_data("grace_hopper.jpg", asfileobj=False))


def eye_angle(landmarks):
    (x0, y0), (x1, y1) = landmarks[:2]
    return math.degrees(math.atan2(y1 - y0, x1 - x0))


def iou(a, b):
    width = min(a[0] + a[2], b[0] + b[2]) - max(a[0], b[0])
    height = min(a[1] + a[3], b[1] + b[3]) - max(a[1], b[1])
    overlap = max(width, 0) * max(height, 0)
    return overlap / (a[2] * a[3] + b[2] * b[3] - overlap)


def rotated(image, degrees):
    """The image turned counter-clockwise (as seen) on a canvas large enough to hold all of it."""
    height, width = image.shape[:2]
    side = math.ceil(math.hypot(height, width))
    canvas = np.zeros((side, side, 3), np.uint8)
    top, left = (side - height) // 2, (side - width) // 2
    canvas[top:top + height, left:left + width] = image
    matrix = cv2.getRotationMatrix2D((side / 2, side / 2), degrees, 1.0)
    return cv2.warpAffine(canvas, matrix, (side, side))


def test_finds_the_one_face_with_plausible_landmarks(detector, photo):
    faces = detector(photo)
    assert len(faces) == 1 and faces.landmarks.shape == (1, 5, 2) and faces.scores[0] > 0.9
    haar = HaarDetector(min_face=40)(photo)
    assert len(haar) == 1 and iou(faces.boxes[0], haar.boxes[0]) > 0.5
    x, y, w, h = faces.boxes[0]
    first_eye, second_eye, nose, mouth_left, mouth_right = faces.landmarks[0]
    for eye in (first_eye, second_eye):
        assert x < eye[0] < x + w and y < eye[1] < y + h / 2
    assert first_eye[0] < nose[0] < second_eye[0] and mouth_left[0] < mouth_right[0]
    assert max(first_eye[1], second_eye[1]) < nose[1] < min(mouth_left[1], mouth_right[1])


def test_nothing_in_featureless_images(detector):
    grey = np.full((480, 640, 3), 128, np.uint8)
    noise = np.random.default_rng(0).integers(0, 256, (480, 640, 3), dtype=np.uint8)
    assert [len(faces) for faces in detector.detect_batch([grey, noise])] == [0, 0]


def test_batch_finds_what_single_frames_find(detector, photo):
    blank = np.zeros_like(photo)
    batch = detector.detect_batch([blank, photo])
    single = detector(photo)
    assert len(batch[0]) == 0
    np.testing.assert_allclose(batch[1].boxes, single.boxes, atol=1e-3)
    np.testing.assert_allclose(batch[1].landmarks, single.landmarks, atol=1e-3)


def test_crops_outside_the_image_are_zero():
    image = torch.full((1, 3, 30, 30), 200.0)
    crop = crops(image, torch.tensor([[-12.0, 0.0, 12.0, 24.0]]), torch.tensor([0]), 24)
    assert torch.all(crop[..., :12] == 0) and torch.allclose(crop[..., 12:], torch.tensor(200.0))


@pytest.mark.parametrize("degrees", [-25, -20, -15, 15, 20, 25])
def test_aligned_crop_levels_the_eyes(detector, photo, degrees):
    upright_angle = eye_angle(detector(photo).landmarks[0])
    frame = rotated(photo, degrees)
    faces = detector(frame)
    assert len(faces) == 1
    crop, angle = face_crop(frame, faces.boxes[0], faces.landmarks[0], CROP_SIZE, MARGIN)
    assert crop.shape == (CROP_SIZE, CROP_SIZE, 3) and crop.dtype == np.uint8
    # turning the image counter-clockwise as seen lowers the eye line's angle in y-down coordinates
    assert abs(angle - (upright_angle - degrees)) < 3
    in_crop = detector(crop)
    assert len(in_crop) == 1
    assert abs(eye_angle(in_crop.landmarks[0])) < 5


def test_level_eyes_give_the_square_crop_pixel_for_pixel():
    frame = np.random.default_rng(1).integers(0, 256, (200, 300, 3), dtype=np.uint8)
    box = np.array([230.0, 10.0, 80.0, 80.0])  # its square, x 210..330 and y -10..110, crosses the top and right
    level_eyes = np.array([[250.0, 50.0], [290.0, 50.0], [270.0, 70.0], [255.0, 85.0], [285.0, 85.0]])
    crop, angle = aligned_crop(frame, level_eyes, box, 120, MARGIN)
    assert angle == 0
    np.testing.assert_array_equal(crop, square_crop(frame, box, MARGIN))
    assert np.all(crop[:10] == 0) and np.all(crop[:, -30:] == 0) and crop[10:, :-30].any()


def test_a_box_taller_than_wide_is_stretched_to_the_square_as_in_s4d():
    frame = np.random.default_rng(3).integers(0, 256, (200, 300, 3), dtype=np.uint8)
    box = np.array([100.0, 40.0, 60.0, 120.0])
    level_eyes = np.array([[115.0, 80.0], [145.0, 80.0], [130.0, 100.0], [118.0, 130.0], [142.0, 130.0]])
    crop, angle = aligned_crop(frame, level_eyes, box, 120, 0.0)
    expected = cv2.resize(frame[40:160, 100:160], (120, 120), interpolation=cv2.INTER_LINEAR)
    # (the outermost columns differ: the warp reads the frame beyond the box, resize repeats its edge)
    assert angle == 0
    np.testing.assert_allclose(crop[:, 1:-1].astype(int), expected[:, 1:-1].astype(int), atol=1)


def test_face_crop_without_landmarks_is_the_resized_square():
    frame = np.random.default_rng(2).integers(0, 256, (240, 320, 3), dtype=np.uint8)
    box = np.array([100.0, 60.0, 80.0, 60.0])
    crop, angle = face_crop(frame, box, None, 64, MARGIN)
    side = round((1 + 2 * MARGIN) * 80)  # 120, centred on the box's centre (140, 90), inside the frame
    left, top = 140 - side // 2, 90 - side // 2
    expected = cv2.resize(frame[top:top + side, left:left + side], (64, 64), interpolation=cv2.INTER_AREA)
    assert angle == 0
    np.testing.assert_array_equal(crop, expected)


def test_missing_weights_name_the_setup_script(monkeypatch, tmp_path):
    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None)
    with pytest.raises(DetectorError, match="scripts/setup.sh"):
        MTCNNDetector()
    empty_package = SimpleNamespace(submodule_search_locations=[str(tmp_path)])
    monkeypatch.setattr(importlib.util, "find_spec", lambda name: empty_package)
    with pytest.raises(DetectorError, match=re.escape(str(tmp_path / "data" / "pnet.pt"))):
        MTCNNDetector()


def test_frames_of_different_sizes_are_refused(detector):
    with pytest.raises(ValueError, match=r"\(10, 10, 3\) uint8, \(20, 20, 3\) uint8"):
        detector.detect_batch([np.zeros((10, 10, 3), np.uint8), np.zeros((20, 20, 3), np.uint8)])

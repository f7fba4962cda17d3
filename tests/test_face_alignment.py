"""The MTCNN detector against facenet-pytorch 2.6.0's own (same weights, same thresholds) on real photographs, and
the eye-level crops made from its landmarks."""
import importlib
import importlib.util
import math
import re
import sys
from types import ModuleType, SimpleNamespace

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


@pytest.fixture(scope="module")
def reference_mtcnn():
    """facenet-pytorch's MTCNN, its models/mtcnn.py imported by itself (the package's __init__ imports its other
    models, which need packages this project does not install), thresholds (0.6, 0.7, 0.7), min face 40."""
    root = list(importlib.util.find_spec("facenet_pytorch").submodule_search_locations)[0]
    package = ModuleType("facenet_pytorch")
    package.__path__ = [root]
    sys.modules["facenet_pytorch"] = package
    try:
        module = importlib.import_module("facenet_pytorch.models.mtcnn")
    finally:
        for name in [n for n in sys.modules if n == "facenet_pytorch" or n.startswith("facenet_pytorch.")]:
            del sys.modules[name]
    return module.MTCNN(min_face_size=40, thresholds=[0.6, 0.7, 0.7], factor=0.709, keep_all=True)


def photographs(photo):
    """The photograph at four sizes (512 x 600 as shipped; 256 to 666 px wide), and four copies of it at different
    sizes side by side on a 1000 x 480 grey image."""
    yield "grace_hopper.jpg", photo
    for scale in (0.5, 0.7, 1.3):
        yield f"grace_hopper.jpg x{scale}", cv2.resize(photo, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
    group = np.full((480, 1000, 3), 90, np.uint8)
    for left, scale in ((0, 0.5), (300, 0.35), (520, 0.6), (850, 0.25)):
        face = cv2.resize(photo, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)[:460, :1000 - left]
        group[20:20 + face.shape[0], left:left + face.shape[1]] = face
    yield "four faces", group


def compare(ours, reference, image):
    """Per face of the reference (at least 40 px, as this project keeps them): the largest distance of a box corner
    and of a landmark to the nearest face found here, and the reference's face side."""
    boxes, _, points = reference.detect(np.ascontiguousarray(image[..., ::-1]), landmarks=True)
    keep = np.minimum(boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]) >= 40
    faces = ours(image)
    corners = np.c_[faces.boxes[:, :2], faces.boxes[:, :2] + faces.boxes[:, 2:]]
    assert len(faces) == keep.sum()
    gaps = []
    for box, landmarks in zip(boxes[keep], points[keep]):
        nearest = int(np.abs(corners - box).max(1).argmin())
        gaps.append((np.abs(corners[nearest] - box).max(), np.abs(faces.landmarks[nearest] - landmarks).max(),
                     box[2] - box[0]))
    return np.array(gaps)


@pytest.mark.slow
def test_same_boxes_and_landmarks_as_facenet_pytorch(reference_mtcnn, photo):
    """On the same input (no downscaling), boxes and landmarks within 1 px of facenet-pytorch's (measured: equal
    to 0.01 px)."""
    detector = MTCNNDetector(min_face=40, max_side=None)
    for name, image in photographs(photo):
        gaps = compare(detector, reference_mtcnn, image)
        assert len(gaps) and gaps[:, :2].max() < 1, (name, gaps)


def test_what_the_640_px_cap_costs(reference_mtcnn, detector, photo):
    """Frames larger than 640 px are detected on a downscaled copy: on the larger images, boxes stay within 10% of
    the face's side of the full-size reference and landmarks within 5% (docs/PREDICT.md gives the measurements)."""
    for name, image in list(photographs(photo))[3:]:
        assert max(image.shape[:2]) > 640
        gaps = compare(detector, reference_mtcnn, image)
        assert np.all(gaps[:, 0] < 0.1 * gaps[:, 2]) and np.all(gaps[:, 1] < 0.05 * gaps[:, 2]), (name, gaps)


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


def test_crops_cut_whole_pixels_and_resample_by_area():
    """A box is cut as the original does (corners truncated, read as 1-based pixels, clamped to the image: the part
    inside is stretched) and resized by area averaging; all boxes at once equal F.interpolate on each cut."""
    images = torch.rand(2, 3, 30, 40, generator=torch.Generator().manual_seed(0)) * 255
    boxes = torch.tensor([[-12.0, 0.0, 12.0, 24.0], [3.7, 5.2, 20.9, 17.1], [30.2, 20.5, 55.0, 41.0]])
    image_index = torch.tensor([0, 1, 1])
    cuts = [images[0:1, :, 0:24, 0:12], images[1:2, :, 4:17, 2:20], images[1:2, :, 19:30, 29:40]]
    expected = torch.cat([torch.nn.functional.interpolate(cut, size=(24, 24), mode="area") for cut in cuts])
    torch.testing.assert_close(crops(images, boxes, image_index, 24), expected, atol=1e-3, rtol=0)


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

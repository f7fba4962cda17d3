"""MTCNN (Zhang et al. 2016): three cascaded networks find faces and their five landmarks. The weights are the
original Caffe networks as converted by facenet-pytorch (MIT licence), read from its installed wheel.

The arithmetic between the networks is that of facenet-pytorch 2.6.0's `detect_face`, which follows the original
MATLAB code (1-based pixel coordinates, box widths of x2 - x1 + 1 in the regressions and landmarks, cells and crops
on whole pixels): tests/test_face_alignment.py checks that both give the same boxes and landmarks. Two differences
are kept on purpose: frames larger than DETECTION_MAX_SIDE are detected on a downscaled copy (speed), and boxes
smaller than `min_face` are dropped.
"""
import importlib.util
import os

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torchvision.ops import batched_nms

from inference.faces import DETECTION_MAX_SIDE, DetectorError, Faces

SETUP_HINT = "run `bash scripts/setup.sh` (it installs facenet-pytorch==2.6.0, whose wheel holds the MTCNN weights)"
PYRAMID_FACTOR = 0.709
CELL, CELL_STRIDE = 12, 2  # P-Net scores every 12x12 window, 2 pixels apart
NMS_PER_SCALE, NMS_STAGE = 0.5, 0.7


def flatten_width_height_channel(x):
    """The converted dense layers read the features in (width, height, channel) order: the networks were trained on
    transposed images and converted through TensorFlow's channel-last layout."""
    return x.permute(0, 3, 2, 1).flatten(1)


class PNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1, self.prelu1 = nn.Conv2d(3, 10, 3), nn.PReLU(10)
        self.conv2, self.prelu2 = nn.Conv2d(10, 16, 3), nn.PReLU(16)
        self.conv3, self.prelu3 = nn.Conv2d(16, 32, 3), nn.PReLU(32)
        self.conv4_1, self.conv4_2 = nn.Conv2d(32, 2, 1), nn.Conv2d(32, 4, 1)

    def forward(self, x):
        x = F.max_pool2d(self.prelu1(self.conv1(x)), 2, 2, ceil_mode=True)
        x = self.prelu3(self.conv3(self.prelu2(self.conv2(x))))
        return F.softmax(self.conv4_1(x), dim=1)[:, 1], self.conv4_2(x)


class RNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1, self.prelu1 = nn.Conv2d(3, 28, 3), nn.PReLU(28)
        self.conv2, self.prelu2 = nn.Conv2d(28, 48, 3), nn.PReLU(48)
        self.conv3, self.prelu3 = nn.Conv2d(48, 64, 2), nn.PReLU(64)
        self.dense4, self.prelu4 = nn.Linear(576, 128), nn.PReLU(128)
        self.dense5_1, self.dense5_2 = nn.Linear(128, 2), nn.Linear(128, 4)

    def forward(self, x):
        x = F.max_pool2d(self.prelu1(self.conv1(x)), 3, 2, ceil_mode=True)
        x = F.max_pool2d(self.prelu2(self.conv2(x)), 3, 2, ceil_mode=True)
        x = self.prelu4(self.dense4(flatten_width_height_channel(self.prelu3(self.conv3(x)))))
        return F.softmax(self.dense5_1(x), dim=1)[:, 1], self.dense5_2(x)


class ONet(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1, self.prelu1 = nn.Conv2d(3, 32, 3), nn.PReLU(32)
        self.conv2, self.prelu2 = nn.Conv2d(32, 64, 3), nn.PReLU(64)
        self.conv3, self.prelu3 = nn.Conv2d(64, 64, 3), nn.PReLU(64)
        self.conv4, self.prelu4 = nn.Conv2d(64, 128, 2), nn.PReLU(128)
        self.dense5, self.prelu5 = nn.Linear(1152, 256), nn.PReLU(256)
        self.dense6_1, self.dense6_2, self.dense6_3 = nn.Linear(256, 2), nn.Linear(256, 4), nn.Linear(256, 10)

    def forward(self, x):
        x = F.max_pool2d(self.prelu1(self.conv1(x)), 3, 2, ceil_mode=True)
        x = F.max_pool2d(self.prelu2(self.conv2(x)), 3, 2, ceil_mode=True)
        x = F.max_pool2d(self.prelu3(self.conv3(x)), 2, 2, ceil_mode=True)
        x = self.prelu5(self.dense5(flatten_width_height_channel(self.prelu4(self.conv4(x)))))
        return F.softmax(self.dense6_1(x), dim=1)[:, 1], self.dense6_2(x), self.dense6_3(x)


def load_networks(device):
    spec = importlib.util.find_spec("facenet_pytorch")
    if spec is None:
        raise DetectorError(f"MTCNN needs the facenet-pytorch package, which is not installed: {SETUP_HINT}")
    weights_dir = os.path.join(list(spec.submodule_search_locations)[0], "data")
    networks = []
    for network, name in ((PNet(), "pnet"), (RNet(), "rnet"), (ONet(), "onet")):
        path = os.path.join(weights_dir, f"{name}.pt")
        if not os.path.isfile(path):
            raise DetectorError(f"MTCNN weight file not found: {path}; {SETUP_HINT}")
        network.load_state_dict(torch.load(path, map_location=device, weights_only=True))
        networks.append(network.to(device).eval())
    return networks


def normalise(images):
    return (images - 127.5) * 0.0078125


def regress(boxes, offsets, inclusive=True):
    """Boxes (x1, y1, x2, y2) moved by offsets given in units of the box's width and height, x2 - x1 + 1 as the
    original counts pixels (`inclusive`), or x2 - x1 (the original's first stage)."""
    return boxes + offsets * (boxes[:, 2:] - boxes[:, :2] + inclusive).repeat(1, 2)


def squared(boxes):
    centre = (boxes[:, :2] + boxes[:, 2:]) / 2
    half = (boxes[:, 2:] - boxes[:, :2]).amax(1, keepdim=True) / 2
    return torch.cat([centre - half, centre + half], 1)


def pixel_spans(boxes, height, width):
    """The pixels (0-based, end excluded) a box covers as the original cuts it: its corners truncated and read as
    1-based inclusive pixel coordinates, clamped to the image: (left, top, right, bottom)."""
    x1, y1, x2, y2 = boxes.trunc().long().unbind(1)
    return (x1.clamp(min=1) - 1, y1.clamp(min=1) - 1, x2.clamp(max=width), y2.clamp(max=height))


def crops(images, boxes, image_index, size):
    """`size` x `size` crops of the boxes (pixel_spans: the part inside the image, stretched), each output pixel the
    mean of the pixels it covers (area resampling, `F.interpolate(mode="area")`), for all boxes at once from the
    images' summed-area tables. Every box must cover at least one pixel of its image."""
    left, top, right, bottom = pixel_spans(boxes, *images.shape[2:])
    table = F.pad(images.double().cumsum(2).cumsum(3), (1, 0, 1, 0)).permute(0, 2, 3, 1)  # (B, H + 1, W + 1, C)
    steps = torch.arange(size + 1, device=images.device)

    def cells(start, extent):  # the output cells' pixel ranges, as adaptive average pooling cuts them
        return (start[:, None] + steps[None, :-1] * extent[:, None] // size,
                start[:, None] - (-steps[None, 1:] * extent[:, None] // size))

    (row_0, row_1), (col_0, col_1) = cells(top, bottom - top), cells(left, right - left)
    image, row_0, row_1, col_0, col_1 = image_index[:, None, None], row_0[..., None], row_1[..., None], \
        col_0[:, None], col_1[:, None]
    sums = table[image, row_1, col_1] - table[image, row_0, col_1] - table[image, row_1, col_0] + \
        table[image, row_0, col_0]
    return (sums / ((row_1 - row_0) * (col_1 - col_0))[..., None]).float().permute(0, 3, 1, 2)


def inside(boxes, height, width):
    """Boxes that cover at least one pixel of the image (the others cannot be cut)."""
    left, top, right, bottom = pixel_spans(boxes, height, width)
    return (right > left) & (bottom > top)


def nms_min(boxes, scores, image_index, threshold):
    """Greedy NMS whose overlap is the intersection over the smaller box's area, pixels counted inclusively (the
    original's last stage)."""
    order = scores.argsort(descending=True)
    boxes, image_index = boxes[order], image_index[order]
    area = (boxes[:, 2:] - boxes[:, :2] + 1).prod(1)
    lower = torch.maximum(boxes[:, None, :2], boxes[None, :, :2])
    sides = torch.minimum(boxes[:, None, 2:], boxes[None, :, 2:]) - lower + 1
    overlap = sides.clamp(min=0).prod(2) / torch.minimum(area[:, None], area[None, :])
    suppresses = ((overlap > threshold) & (image_index[:, None] == image_index[None, :])).cpu()
    keep = torch.ones(len(order), dtype=torch.bool)
    for i in range(len(order)):
        if keep[i]:
            keep[i + 1:] &= ~suppresses[i, i + 1:]
    return order[keep.to(order.device)]


def faces_per_frame(boxes, scores, landmarks, image_index, count, min_face):
    """`Faces` for each of `count` frames, the most confident first; boxes narrower or lower than `min_face` dropped."""
    boxes = torch.cat([boxes[:, :2], boxes[:, 2:] - boxes[:, :2]], 1)
    big = boxes[:, 2:].amin(1) >= min_face
    boxes, scores, landmarks = (values[big].double().cpu().numpy() for values in (boxes, scores, landmarks))
    image_index = image_index[big].cpu().numpy()
    found = []
    for i in range(count):
        mine = np.flatnonzero(image_index == i)
        mine = mine[np.argsort(-scores[mine], kind="stable")]
        found.append(Faces(boxes[mine], scores[mine], landmarks[mine]))
    return found


class MTCNNDetector:
    """MTCNN with the original's pyramid, NMS thresholds and cascade; boxes smaller than `min_face` dropped. Frames
    larger than `max_side` are detected on a downscaled copy (None: never); boxes and landmarks are in frame
    pixels."""

    def __init__(self, min_face: int = 40, device: str = "cpu", thresholds=(0.6, 0.7, 0.7),
                 max_side: int | None = DETECTION_MAX_SIDE):
        self.pnet, self.rnet, self.onet = load_networks(device)
        self.min_face, self.device, self.thresholds, self.max_side = min_face, device, thresholds, max_side

    def __call__(self, frame: np.ndarray) -> Faces:
        return self.detect_batch([frame])[0]

    @torch.inference_mode()
    def detect_batch(self, frames: list[np.ndarray]) -> list[Faces]:
        """Faces in each of a list of BGR uint8 frames of one size, detected together."""
        if not frames:
            return []
        kinds = sorted({f"{frame.shape} {frame.dtype}" for frame in frames})
        if len(kinds) != 1 or frames[0].ndim != 3 or frames[0].shape[2] != 3 or frames[0].dtype != np.uint8:
            raise ValueError(f"MTCNN needs BGR uint8 frames (H, W, 3), all of one size; got {', '.join(kinds)}")
        height, width = frames[0].shape[:2]
        images = torch.from_numpy(np.stack(frames)[..., ::-1].copy()).to(self.device).permute(0, 3, 1, 2).float()
        scale = min(1.0, self.max_side / max(height, width)) if self.max_side else 1.0
        if scale < 1:
            images = F.interpolate(images, size=(round(height * scale), round(width * scale)), mode="area")
        boxes, image_index = self.propose(images, max(self.min_face * scale, CELL))
        boxes, image_index = self.refine(images, boxes, image_index)
        boxes, scores, landmarks, image_index = self.output(images, boxes, image_index)
        to_frame = torch.tensor([width / images.shape[3], height / images.shape[2]], device=self.device)
        return faces_per_frame(boxes * to_frame.repeat(2), scores, landmarks * to_frame, image_index, len(frames),
                               self.min_face)

    def propose(self, images, min_side):
        """P-Net over the image pyramid: squared candidate boxes (x1, y1, x2, y2) and their image's index."""
        height, width = images.shape[2:]
        found = []
        scale = CELL / min_side
        while min(height, width) * scale >= CELL:
            scaled = F.interpolate(images, size=(int(height * scale + 1), int(width * scale + 1)), mode="area")
            probability, offset_maps = self.pnet(normalise(scaled))
            image, row, col = torch.nonzero(probability >= self.thresholds[0], as_tuple=True)
            corner = torch.stack([col, row], 1).float() * CELL_STRIDE
            # the cell's pixels, 1-based as in the original: from corner + 1 to corner + 12, in the image
            cells = torch.cat([((corner + 1) / scale).floor(), ((corner + CELL) / scale).floor()], 1)
            scores = probability[image, row, col]
            keep = batched_nms(cells, scores, image, NMS_PER_SCALE)
            found.append((cells[keep], scores[keep], offset_maps[image, :, row, col][keep], image[keep]))
            scale *= PYRAMID_FACTOR
        if not found:
            return torch.zeros(0, 4, device=self.device), torch.zeros(0, dtype=torch.long, device=self.device)
        cells, scores, offsets, image_index = (torch.cat(parts) for parts in zip(*found))
        keep = batched_nms(cells, scores, image_index, NMS_STAGE)
        return squared(regress(cells[keep], offsets[keep], inclusive=False)), image_index[keep]

    def refine(self, images, boxes, image_index):
        """R-Net on 24x24 crops of the candidates."""
        cut = inside(boxes, *images.shape[2:])
        boxes, image_index = boxes[cut], image_index[cut]
        probability, offsets = self.rnet(normalise(crops(images, boxes, image_index, 24)))
        face = probability > self.thresholds[1]
        boxes, probability, offsets, image_index = boxes[face], probability[face], offsets[face], image_index[face]
        keep = batched_nms(boxes, probability, image_index, NMS_STAGE)
        return squared(regress(boxes[keep], offsets[keep])), image_index[keep]

    def output(self, images, boxes, image_index):
        """O-Net on 48x48 crops: final boxes (x1, y1, x2, y2), scores, landmarks (N, 5, 2), image indices."""
        cut = inside(boxes, *images.shape[2:])
        boxes, image_index = boxes[cut], image_index[cut]
        probability, offsets, points = self.onet(normalise(crops(images, boxes, image_index, 48)))
        face = probability > self.thresholds[2]
        boxes, probability, offsets, points = boxes[face], probability[face], offsets[face], points[face]
        # points: five x then five y, in units of the box's width and height from its first pixel (1-based)
        size = boxes[:, 2:] - boxes[:, :2] + 1
        landmarks = boxes[:, None, :2] - 1 + points.view(-1, 2, 5).transpose(1, 2) * size[:, None, :]
        boxes = regress(boxes, offsets)
        keep = nms_min(boxes, probability, image_index[face], NMS_STAGE)
        return boxes[keep], probability[keep], landmarks[keep], image_index[face][keep]

"""Synthetic DFEW-layout dataset: drawn faces whose expression develops over each clip.

Every clip starts neutral; from a random onset frame in the first half, one facial dynamic per
DFEW class unfolds to a large apex. Position, scale, colours, head motion, timing and pixel noise
are random per clip and independent of the class, so only the facial dynamic identifies it.
"""
import csv
import json
import math
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from utils.files import write_json_atomically

from .classes import DFEW_CLASSES
from .description import DESCRIPTION_FILE

FRAME_EXTENSIONS = ('jpg', 'png')
PARAMETERS_FILE = 'synthetic.json'
JPEG_QUALITY = 90
SUPERSAMPLING = 2
IMAGE_SEED_STREAM = 1  # keeps the still images' random draws apart from the clips' ([seed, index])
# A clip is one expression as the synthetic videos show it (scripts/make_synthetic_video.py): 16 frames at 8 fps, so
# a model trained on the clips sees an expression unfold over (16 - 1) / 8 = 1.875 s; the analysis of those videos
# starts a window every 0.5 s (four per expression).
VIDEO_FPS = 8.0
FRAMES_PER_EXPRESSION = 16
WINDOW_STRIDE_SECONDS = 0.5

# Expression state: offsets from the neutral face, in face units (face half-width = 1, y down).
EXPRESSION_FIELDS = (
    'eye_open',          # added to the eye-opening factor (1 = neutral)
    'brow_raise',        # whole brow moves up
    'brow_inner_raise',  # inner brow end moves up (negative: down)
    'brow_pinch',        # inner brow ends move towards the face centre
    'mouth_width',       # added to the mouth half-width
    'mouth_lift',        # mouth corners move up (negative: down)
    'mouth_open',        # lower lip drops
    'mouth_open_top',    # upper lip rises
    'lip_press',         # 1 = lips pressed into a thin line
    'teeth',             # 1 = mouth interior shows teeth instead of a dark cavity
    'cheeks',            # 1 = raised, flushed cheeks
    'nose_wrinkle',      # 1 = wrinkle lines across the nose bridge
    'sneer',             # 1 = upper lip raised on one side
)
APEX = {
    'happy': dict(mouth_lift=0.3, mouth_width=0.12, mouth_open=0.2, teeth=1.0, cheeks=1.0,
                  eye_open=-0.45),
    'sad': dict(mouth_lift=-0.28, mouth_width=-0.06, mouth_open=0.04, brow_inner_raise=0.26,
                brow_raise=-0.06, eye_open=-0.4),
    'neutral': dict(),
    'angry': dict(brow_raise=-0.1, brow_inner_raise=-0.26, brow_pinch=0.1, eye_open=-0.3,
                  mouth_width=-0.12, mouth_lift=-0.05, lip_press=1.0),
    'surprise': dict(brow_raise=0.26, eye_open=0.8, mouth_width=-0.14, mouth_open=0.45,
                     mouth_open_top=0.12),
    'disgust': dict(nose_wrinkle=1.0, sneer=1.0, brow_raise=-0.08, brow_inner_raise=-0.06,
                    eye_open=-0.35, teeth=1.0, mouth_lift=-0.08),
    'fear': dict(eye_open=0.8, brow_raise=0.16, brow_inner_raise=0.14, brow_pinch=0.1,
                 mouth_width=0.18, mouth_open=0.14, mouth_open_top=0.08, mouth_lift=-0.08,
                 teeth=1.0),
}
FACE_RADII = (1.0, 1.2)


def _random_colour(rng, low, high):
    return rng.integers(low, high + 1, size=3)


def draw_identity(rng, size):
    """Everything about a clip that is not the expression: geometry, colours, motion, timing."""
    face_fraction = rng.uniform(0.75, 0.9)
    scale = face_fraction * size / (2 * FACE_RADII[1])
    margin = 0.4 * (1 - face_fraction) * size / 2
    skin = _random_colour(rng, 110, 250)
    return dict(
        scale=scale,
        centre=size / 2 + rng.uniform(-margin, margin, size=2),
        tilt=rng.uniform(-0.08, 0.08),
        sway=rng.uniform(0, 0.03, size=3),  # x, y (fraction of scale) and rotation amplitudes
        sway_phase=rng.uniform(0, 2 * math.pi, size=3),
        sway_rate=rng.uniform(0.3, 1.2),
        background=_random_colour(rng, 0, 255),
        skin=skin,
        shade=(skin * rng.uniform(0.55, 0.8)).astype(int),
        blush=_random_colour(rng, 120, 255),
        features=_random_colour(rng, 0, 70),
        lips=_random_colour(rng, 40, 200),
        cavity=_random_colour(rng, 0, 80),
        eye_white=_random_colour(rng, 190, 255),
        eye_dx=rng.uniform(0.38, 0.42),
        eye_y=rng.uniform(-0.24, -0.18),
        eye_rx=rng.uniform(0.21, 0.25),
        brow_gap=rng.uniform(0.2, 0.28),
        brow_thickness=rng.uniform(0.1, 0.14),
        mouth_rx=rng.uniform(0.36, 0.44),
        mouth_y=rng.uniform(0.52, 0.58),
        mouth_lift=rng.uniform(-0.03, 0.03),
        lip_width=rng.uniform(0.07, 0.1),
        sneer_side=rng.choice((-1.0, 1.0)),
        noise=rng.uniform(0, 8),
    )


def _intensities(rng, num_frames):
    """Expression intensity per frame: 0 until a random onset, smooth rise to a random apex."""
    onset = rng.uniform(0.5, max(num_frames / 2 - 1, 0.5))
    duration = rng.uniform(0.15, 0.35) * num_frames
    apex = rng.uniform(0.85, 1.0)
    progress = np.clip((np.arange(num_frames) - onset) / duration, 0, 1)
    return apex * progress * progress * (3 - 2 * progress)


def _expression(label, intensity, rng, blink):
    apex = APEX[DFEW_CLASSES[label]]
    state = {name: intensity * apex.get(name, 0.0) for name in EXPRESSION_FIELDS}
    state['eye_open'] += rng.normal(0, 0.04)
    state['brow_raise'] += rng.normal(0, 0.015)
    state['mouth_lift'] += rng.normal(0, 0.015)
    if blink:
        state['eye_open'] = -0.9
    return state


class _FaceCanvas:
    """Draws in face coordinates on a supersampled canvas for one frame's head pose."""

    def __init__(self, size, identity, time):
        self.image = Image.new('RGB', (size * SUPERSAMPLING, size * SUPERSAMPLING),
                               tuple(identity['background']))
        self.draw = ImageDraw.Draw(self.image)
        waves = identity['sway'] * np.sin(identity['sway_rate'] * time + identity['sway_phase'])
        self.scale = identity['scale'] * SUPERSAMPLING
        self.origin = (identity['centre'] + waves[:2] * identity['scale']) * SUPERSAMPLING
        angle = identity['tilt'] + waves[2]
        self.rotation = np.array([[math.cos(angle), -math.sin(angle)],
                                  [math.sin(angle), math.cos(angle)]])

    def pixels(self, points):
        points = np.asarray(points, dtype=float).reshape(-1, 2)
        return [tuple(p) for p in self.origin + self.scale * points @ self.rotation.T]

    def ellipse(self, centre, rx, ry, fill, outline=None, width=0.0):
        angles = np.linspace(0, 2 * math.pi, 40, endpoint=False)
        points = np.stack([centre[0] + rx * np.cos(angles), centre[1] + ry * np.sin(angles)], 1)
        self.draw.polygon(self.pixels(points), fill=tuple(fill),
                          outline=None if outline is None else tuple(outline),
                          width=max(1, round(width * self.scale)))

    def polyline(self, points, colour, width):
        self.draw.line(self.pixels(points), fill=tuple(colour),
                       width=max(1, round(width * self.scale)), joint='curve')

    def polygon(self, points, fill, outline=None, width=0.0):
        self.draw.polygon(self.pixels(points), fill=tuple(fill),
                          outline=None if outline is None else tuple(outline),
                          width=max(1, round(width * self.scale)))


def _mix(a, b, weight):
    weight = float(np.clip(weight, 0, 1))
    return np.round((1 - weight) * a + weight * b).astype(int)


def _draw_eyes_and_brows(canvas, identity, state):
    eye_ry = max(0.01, 0.6 * identity['eye_rx'] * (1 + state['eye_open']))
    for side in (-1, 1):
        eye = (side * identity['eye_dx'], identity['eye_y'])
        canvas.ellipse(eye, identity['eye_rx'], eye_ry, identity['eye_white'],
                       identity['features'], 0.025)
        pupil = min(0.45 * identity['eye_rx'], eye_ry)
        canvas.ellipse(eye, pupil, pupil, identity['features'])
        brow_y = identity['eye_y'] - identity['brow_gap'] - state['brow_raise']
        inner = (side * (identity['eye_dx'] - identity['eye_rx'] - 0.02 - state['brow_pinch']),
                 brow_y - state['brow_inner_raise'])
        outer = (side * (identity['eye_dx'] + identity['eye_rx'] + 0.05), brow_y)
        half = identity['brow_thickness'] / 2
        canvas.polygon([(inner[0], inner[1] - half), (outer[0], outer[1] - half),
                        (outer[0], outer[1] + half), (inner[0], inner[1] + half)],
                       identity['features'])


def _draw_nose(canvas, identity, state):
    canvas.polygon([(0, -0.08), (0.11, 0.3), (-0.11, 0.3)], identity['shade'])
    wrinkle = _mix(identity['skin'], identity['features'], state['nose_wrinkle'])
    if state['nose_wrinkle'] > 0.02:
        for y in (-0.12, -0.02, 0.08):
            canvas.polyline([(-0.2, y + 0.03), (0, y - 0.03), (0.2, y + 0.03)], wrinkle, 0.04)


def _mouth_outline(identity, state):
    half_width = identity['mouth_rx'] + state['mouth_width']
    u = np.linspace(-1, 1, 21)
    centre = identity['mouth_y'] - (identity['mouth_lift'] + state['mouth_lift']) * u * u
    bulge = 1 - u * u
    sneer = state['sneer'] * 0.3 * np.clip(identity['sneer_side'] * u, 0, 1) ** 0.7
    upper = centre - state['mouth_open_top'] * bulge - sneer * bulge ** 0.5
    lower = centre + state['mouth_open'] * bulge
    xs = half_width * u
    return np.stack([xs, upper], 1), np.stack([xs, lower], 1)


def _draw_mouth(canvas, identity, state):
    upper, lower = _mouth_outline(identity, state)
    lip_width = identity['lip_width'] * (1 - 0.6 * state['lip_press'])
    lips = _mix(identity['lips'], identity['features'], state['lip_press'])
    if np.max(lower[:, 1] - upper[:, 1]) * canvas.scale < 2:
        canvas.polyline(upper, lips, lip_width)
        return
    interior = _mix(identity['cavity'], identity['eye_white'], state['teeth'])
    canvas.polygon(np.concatenate([upper, lower[::-1]]), interior, lips, lip_width)


def _render_frame(identity, state, size, time, rng):
    canvas = _FaceCanvas(size, identity, time)
    canvas.ellipse((0, 0), *FACE_RADII, identity['skin'])
    if state['cheeks'] > 0.02:
        cheek = _mix(identity['skin'], identity['blush'], state['cheeks'])
        for side in (-1, 1):
            canvas.ellipse((side * 0.56, 0.3 - 0.08 * state['cheeks']), 0.2, 0.16, cheek)
    _draw_eyes_and_brows(canvas, identity, state)
    _draw_nose(canvas, identity, state)
    _draw_mouth(canvas, identity, state)
    pixels = np.asarray(canvas.image.reduce(SUPERSAMPLING), dtype=np.float32)
    pixels += rng.normal(0, identity['noise'], size=pixels.shape)
    return Image.fromarray(np.clip(np.round(pixels), 0, 255).astype(np.uint8))


def render_clip(label, num_frames, size, rng, identity=None):
    """The frames (PIL images) of one clip of class `label` (index into DFEW_CLASSES); `identity` (of
    `draw_identity`: face, colours, pose, background) drawn from `rng` unless given (one person's clips)."""
    identity = draw_identity(rng, size) if identity is None else identity
    intensities = _intensities(rng, num_frames)
    neutral = DFEW_CLASSES[label] == 'neutral'
    frames = []
    for t, intensity in enumerate(intensities):
        blink = neutral and rng.random() < 0.15
        state = _expression(label, intensity, rng, blink)
        frames.append(_render_frame(identity, state, size, float(t), rng))
    return frames


def render_image(label, size, rng):
    """One still face (PIL image) of class `label` at a random intensity between half and full apex."""
    identity = draw_identity(rng, size)
    intensity = rng.uniform(0.5, 1.0)
    time = rng.uniform(0, 16)
    return _render_frame(identity, _expression(label, intensity, rng, blink=False), size, time, rng)


def _split_rows(labels, folds, seed):
    """(train indices, test indices) per fold, stratified by label."""
    from sklearn.model_selection import StratifiedKFold, train_test_split  # here: predict.py's start-up needs none

    indices = np.arange(len(labels))
    if folds == 1:
        train, test = train_test_split(indices, test_size=0.2, stratify=labels, random_state=seed)
        return [(np.sort(train), np.sort(test))]
    splitter = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed)
    return list(splitter.split(indices, labels))


def _write_csv(path, clip_ids, labels, header=('video_name', 'label')):
    with open(path, 'w', newline='') as handle:
        writer = csv.writer(handle, lineterminator='\n')
        writer.writerow(header)
        writer.writerows([clip_id, int(label)] for clip_id, label in zip(clip_ids, labels))


def _check_arguments(clips_per_class, num_frames, size, folds, ext):
    if not 1 <= clips_per_class * len(DFEW_CLASSES) <= 99999:
        raise ValueError(f'clips_per_class={clips_per_class}: expected 1..{99999 // 7} '
                         '(clip ids are 5 digits)')
    if num_frames < 2:
        raise ValueError(f'num_frames={num_frames}: expected at least 2')
    if size < 16:
        raise ValueError(f'size={size}: expected at least 16 pixels')
    if folds < 1 or (folds > 1 and folds > clips_per_class):
        raise ValueError(f'folds={folds}: expected 1..clips_per_class ({clips_per_class})')
    if folds == 1 and clips_per_class < 5:
        raise ValueError(f'clips_per_class={clips_per_class}: the 80/20 split needs at least 5')
    if ext not in FRAME_EXTENSIONS:
        raise ValueError(f'ext={ext!r}: expected one of {FRAME_EXTENSIONS}')


def _summary(root, parameters, labels, splits, generated):
    root = Path(root)
    return dict(
        root=str(root),
        clips_dir=str(root / 'clips'),
        train_csvs=[str(root / 'splits' / f'train_set_{k}.csv') for k in range(1, len(splits) + 1)],
        test_csvs=[str(root / 'splits' / f'test_set_{k}.csv') for k in range(1, len(splits) + 1)],
        num_clips=len(labels),
        class_counts={name: int(np.sum(labels == i)) for i, name in enumerate(DFEW_CLASSES)},
        fold_sizes=[dict(train=len(train), test=len(test)) for train, test in splits],
        parameters=parameters,
        generated=generated,
    )


def _exists_already(root, parameters):
    """True when `root` holds a complete synthetic dataset written with `parameters`, False when
    it is missing or empty; any other content is refused."""
    if not root.exists() or not any(root.iterdir()):
        return False
    stored_file = root / PARAMETERS_FILE
    stored = json.loads(stored_file.read_text()) if stored_file.is_file() else None
    if stored != parameters:
        raise FileExistsError(
            f'{root} is not empty and is not a synthetic dataset with parameters {parameters}'
            f' ({stored_file}: {stored if stored is not None else "missing"}); '
            'choose an empty folder')
    return True


def _write_description(clips_dir, num_frames):
    """The clips' dataset.json: `num_frames` frames spread over one expression of a synthetic video, whole frames
    as faces, and the note that a model trained on drawn faces means nothing on real ones."""
    description = dict(sampling=dict(mode='spread', frames=num_frames),
                       median_clip_seconds=(FRAMES_PER_EXPRESSION - 1) / VIDEO_FPS,
                       window_stride_seconds=WINDOW_STRIDE_SECONDS, detector='none',
                       note='trained on synthetic drawn faces (datasets/synthetic.py): its predictions on real faces '
                            'mean nothing')
    write_json_atomically(clips_dir / DESCRIPTION_FILE, description)


def write_synthetic_dfew(root, clips_per_class=60, num_frames=16, size=112, folds=1, seed=0,
                         ext='jpg', progress=None):
    """Write a synthetic DFEW-layout dataset under `root` and return a summary dict.

    Layout: root/clips/<5-digit id>/<5-digit frame>.<ext>, root/splits/{train,test}_set_{k}.csv
    (header video_name,label; 0-based DFEW labels), root/clips/dataset.json (how the clips present faces, read by
    training into the checkpoint's args: datasets/description.py) and root/synthetic.json (the parameters).
    Refuses a non-empty `root` that is not a synthetic dataset with the same parameters; returns
    without writing (generated=False) when it is one. `progress(done, total)`, when given, is
    called after every clip.
    """
    _check_arguments(clips_per_class, num_frames, size, folds, ext)
    parameters = dict(clips_per_class=clips_per_class, num_frames=num_frames, size=size,
                      folds=folds, seed=seed, ext=ext)
    labels = np.random.default_rng(seed).permutation(
        np.repeat(np.arange(len(DFEW_CLASSES)), clips_per_class))
    splits = _split_rows(labels, folds, seed)
    root = Path(root)
    if _exists_already(root, parameters):
        _write_description(root / 'clips', num_frames)  # datasets written before it existed get one too
        return _summary(root, parameters, labels, splits, generated=False)

    clip_ids = [f'{index + 1:05d}' for index in range(len(labels))]
    save_options = dict(quality=JPEG_QUALITY) if ext == 'jpg' else {}
    for index, (clip_id, label) in enumerate(zip(clip_ids, labels)):
        clip_dir = root / 'clips' / clip_id
        clip_dir.mkdir(parents=True)
        frames = render_clip(int(label), num_frames, size, np.random.default_rng([seed, index]))
        for t, frame in enumerate(frames):
            frame.save(clip_dir / f'{t + 1:05d}.{ext}', **save_options)
        if progress is not None:
            progress(index + 1, len(labels))
    (root / 'splits').mkdir()
    for k, (train, test) in enumerate(splits, start=1):
        for name, rows in (('train', train), ('test', test)):
            _write_csv(root / 'splits' / f'{name}_set_{k}.csv',
                       [clip_ids[i] for i in rows], labels[rows])
    _write_description(root / 'clips', num_frames)
    # Written last: its presence marks a complete dataset.
    (root / PARAMETERS_FILE).write_text(json.dumps(parameters, indent=2) + '\n')
    return _summary(root, parameters, labels, splits, generated=True)


def write_synthetic_images(root, images_per_class=1000, size=64, seed=0, progress=None):
    """Write a static (image) dataset of synthetic faces under `root` and return a summary dict.

    Layout: root/images/<6-digit id>.jpg and root/splits/{train,test}.csv (header image,label;
    0-based DFEW labels; stratified 80/20), root/synthetic.json. Idempotent like
    `write_synthetic_dfew`; identities are drawn independently of the video clips' (another seed
    stream).
    """
    if not 1 <= images_per_class * len(DFEW_CLASSES) <= 999999 or images_per_class < 5:
        raise ValueError(f'images_per_class={images_per_class}: expected 5..{999999 // 7}')
    if size < 16:
        raise ValueError(f'size={size}: expected at least 16 pixels')
    parameters = dict(kind='images', images_per_class=images_per_class, size=size, seed=seed)
    labels = np.random.default_rng(seed).permutation(
        np.repeat(np.arange(len(DFEW_CLASSES)), images_per_class))
    (train, test), = _split_rows(labels, 1, seed)
    root = Path(root)
    summary = dict(root=str(root), train_csv=str(root / 'splits' / 'train.csv'),
                   test_csv=str(root / 'splits' / 'test.csv'), num_train=len(train), num_test=len(test),
                   parameters=parameters)
    if _exists_already(root, parameters):
        return {**summary, 'generated': False}
    names = [f'images/{index + 1:06d}.jpg' for index in range(len(labels))]
    (root / 'images').mkdir(parents=True)
    for index, (name, label) in enumerate(zip(names, labels)):
        image = render_image(int(label), size, np.random.default_rng([seed, index, IMAGE_SEED_STREAM]))
        image.save(root / name, quality=JPEG_QUALITY)
        if progress is not None:
            progress(index + 1, len(labels))
    (root / 'splits').mkdir()
    for split, rows in (('train', train), ('test', test)):
        _write_csv(root / 'splits' / f'{split}.csv', [names[i] for i in rows], labels[rows], header=('image', 'label'))
    (root / PARAMETERS_FILE).write_text(json.dumps(parameters, indent=2) + '\n')
    return {**summary, 'generated': True}

"""What a data set made from one's own videos (scripts/extract_clips.py) says about itself, beside its clips:

- `classes.txt`: the class names, one per line, line k naming label k;
- `dataset.json`: how the clips were made, above all their sampling: `{"mode": "spread", "frames": N}` (N frames
  spread over each whole clip, as DFEW's clip_224x224_16f) or `{"mode": "fps", "fps": R}` (every frame, resampled
  to R per second, as FERV39K and MAFW), and `median_clip_seconds` (from a clip's first frame to its last);
  optionally `window_stride_seconds` (the step between the analysis's windows; default half a window),
  `detector` (the face detector whose crops the clips are; "none": every frame is the face) and `note` (what a
  user of a model trained on them must know), as the synthetic clips of datasets/synthetic.py have.

Training reads both (class names, sampling, detector and note go into the checkpoint's args), so that the analysis
of raw videos shows the class names and cuts windows and faces as the training clips were made.
"""
import json
import os

CLASSES_FILE = "classes.txt"
DESCRIPTION_FILE = "dataset.json"
SAMPLING_MODES = ("spread", "fps")


def read_class_names(path: str) -> list[str]:
    """The names of a classes file (blank lines at the end ignored); ValueError naming file:line when one is
    empty or repeated."""
    with open(path, encoding="utf-8-sig") as handle:
        lines = [line.strip() for line in handle.read().rstrip().splitlines()]
    seen = {}
    for number, name in enumerate(lines, start=1):
        if not name:
            raise ValueError(f"{path}:{number}: empty class name (expected one name per line, line k naming label "
                             "k - 1)")
        if name in seen:
            raise ValueError(f"{path}:{number}: class {name!r} is named again (first on line {seen[name]})")
        seen[name] = number
    if not lines:
        raise ValueError(f"{path}: no class name (expected one per line)")
    return lines


def parse_class_names(value: str) -> list[str]:
    """--class_names: a classes file, or the names separated by commas."""
    if os.path.isfile(value):
        return read_class_names(value)
    names = [name.strip() for name in value.split(",")]
    if len(names) < 2 or not all(names) or len(set(names)) != len(names):
        raise ValueError(f"--class_names {value!r}: expected a classes file (one name per line) or at least two "
                         "distinct non-empty names separated by commas")
    return names


def read_description(data_path: str) -> dict | None:
    """The dataset.json of `data_path`, or None when it has none."""
    path = os.path.join(data_path, DESCRIPTION_FILE)
    if not os.path.isfile(path):
        return None
    with open(path) as handle:
        description = json.load(handle)
    sampling = description.get("sampling", {})
    if sampling.get("mode") not in SAMPLING_MODES:
        raise ValueError(f"{path}: sampling {sampling!r} has no mode in {SAMPLING_MODES}")
    return description


def clip_sampling(description: dict, num_frames: int, sampling_rate: int) -> dict:
    """What a model trained on these clips (`num_frames` frames, every `sampling_rate`-th) saw, as the analysis's
    window policy needs it: {"mode": "spread", "window_seconds": S} (S: seconds from a window's first frame to its
    last) or {"mode": "fps", "fps": R} (consecutive frames at R per second), with "stride_seconds" when the
    description gives the analysis's window stride."""
    sampling = description["sampling"]
    stride = {"stride_seconds": description["window_stride_seconds"]} if "window_stride_seconds" in description else {}
    if sampling["mode"] == "fps":
        return dict(mode="fps", fps=sampling["fps"] / sampling_rate, **stride)
    # a clip has `frames` frames over its median length; training takes `num_frames` of them, `sampling_rate` apart
    fraction = min(1.0, (num_frames - 1) * sampling_rate / max(sampling["frames"] - 1, 1))
    return dict(mode="spread", window_seconds=description["median_clip_seconds"] * fraction, **stride)


def describe_args(args, names_fixed: bool) -> None:
    """Set `args.class_names`, `args.clip_sampling`, `args.clip_detector` and `args.data_note` (None when unknown) of
    a run on `args.data_path`: the names of --class_names, else (a data set without fixed names, `names_fixed`
    False) of DATA_PATH/classes.txt when present, which also give --nb_classes; the sampling, detector and note of
    DATA_PATH/dataset.json. ValueError when they disagree."""
    names = None
    if args.class_names:
        names = parse_class_names(args.class_names)
    elif not names_fixed and os.path.isfile(os.path.join(args.data_path, CLASSES_FILE)):
        names = read_class_names(os.path.join(args.data_path, CLASSES_FILE))
    if names is not None:
        if names_fixed:
            raise ValueError(f"--class_names is for data sets without fixed class names (FRAMES, IMAGES), not "
                             f"--data_set {args.data_set}")
        if args.nb_classes is not None and args.nb_classes != len(names):
            raise ValueError(f"--nb_classes {args.nb_classes}, but {len(names)} class names are given "
                             f"({', '.join(names)})")
        args.nb_classes = len(names)
    args.class_names = names
    description = read_description(args.data_path)
    args.clip_sampling = description and clip_sampling(description, args.num_frames, args.sampling_rate)
    args.clip_detector, args.data_note = (description or {}).get("detector"), (description or {}).get("note")

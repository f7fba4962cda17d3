"""Dataset construction from the command-line arguments of the training script."""
from argparse import Namespace

from .bad_clips import SkipBadClips
from .classes import AFFECTNET7_CLASSES, AFFECTNET8_CLASSES, DFEW_CLASSES, FERV39K_CLASSES, MAFW_CLASSES, RAFDB_CLASSES
from .video_dataset import VideoClsDataset

JPEG = (".jpg", ".jpeg")
IMAGE = JPEG + (".png",)
# name -> (class names, or None when --nb_classes decides; accepted frame extensions)
VIDEO_DATASETS = {
    "DFEW": (DFEW_CLASSES, JPEG),
    "FERV39K": (FERV39K_CLASSES, JPEG),
    "MAFW": (MAFW_CLASSES, (".png",)),
    "FRAMES": (None, IMAGE),
}
# static stage: CSV rows name image files, each a one-frame clip
IMAGE_DATASETS = {
    "IMAGES": (None, IMAGE),
    "RAFDB": (RAFDB_CLASSES, IMAGE),
    "AffectNet7": (AFFECTNET7_CLASSES, IMAGE),
    "AffectNet8": (AFFECTNET8_CLASSES, IMAGE),
}
DATASETS = {**VIDEO_DATASETS, **IMAGE_DATASETS}
ALIASES = {"FERV39k": "FERV39K"}


def is_image_dataset(name: str) -> bool:
    return ALIASES.get(name, name) in IMAGE_DATASETS


def default_class_names(name: str, num_classes: int) -> list[str]:
    """The class names of the data set `name`; "0".."K-1" for those that name none (FRAMES, IMAGES)."""
    return list(DATASETS[ALIASES.get(name, name)][0] or [str(k) for k in range(num_classes)])


def has_fixed_class_names(name: str) -> bool:
    """Whether the data set `name` names its classes (FRAMES and IMAGES do not: --class_names, classes.txt)."""
    return DATASETS[ALIASES.get(name, name)][0] is not None


def dataset_spec(args: Namespace) -> tuple[list[str] | None, tuple[str, ...], int]:
    """(class names or None, accepted frame extensions, class count) of --data_set / --nb_classes."""
    name = ALIASES.get(args.data_set, args.data_set)
    if name not in DATASETS:
        raise ValueError(f"--data_set must be one of {sorted(DATASETS) + sorted(ALIASES)}, got {args.data_set!r}")
    class_names, extensions = DATASETS[name]
    class_names = class_names or getattr(args, "class_names", None)  # --class_names of FRAMES / IMAGES
    fixed_classes = len(class_names) if class_names else None
    if fixed_classes is None:
        if args.nb_classes is None or args.nb_classes < 1:
            raise ValueError(f"--data_set {name} needs a positive --nb_classes, got {args.nb_classes}")
        return class_names, extensions, args.nb_classes
    if args.nb_classes is not None and args.nb_classes != fixed_classes:
        raise ValueError(f"{name} has {fixed_classes} classes, but --nb_classes is {args.nb_classes}")
    return class_names, extensions, fixed_classes


def build_dataset(is_train: bool, test_mode: bool, args: Namespace) -> tuple[VideoClsDataset, int]:
    """(dataset, nb_classes) for the train (is_train), test (test_mode) or validation split.

    With --skip_bad_clips the dataset is wrapped in SkipBadClips (items carry a report field).
    """
    class_names, extensions, nb_classes = dataset_spec(args)
    if is_train:
        split, mode, anno_path = "train", "train", args.train_label_path
    elif test_mode:
        split, mode, anno_path = "test", "test", args.test_label_path
    else:
        split, mode, anno_path = "val", "validation", args.val_label_path
    images = is_image_dataset(args.data_set)
    dataset = VideoClsDataset(
        anno_path, args.data_path, mode, nb_classes, extensions,
        clip_len=1 if images else args.num_frames, sampling_rate=args.sampling_rate, input_size=args.input_size,
        short_side_size=args.short_side_size, test_num_segment=1 if images else args.test_num_segment,
        test_num_crop=1 if images else args.test_num_crop, num_sample=args.num_sample, aa=args.aa,
        train_interpolation=args.train_interpolation, reprob=args.reprob, remode=args.remode,
        recount=args.recount, skip_bad_clips=args.skip_bad_clips, images=images)
    dataset.class_names = list(class_names) if class_names else default_class_names(args.data_set, nb_classes)
    if args.skip_bad_clips:
        dataset = SkipBadClips(dataset, split, args.max_bad_fraction)
    return dataset, nb_classes

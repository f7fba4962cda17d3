"""Dataset construction from the command-line arguments of the training script."""
from argparse import Namespace

from .classes import DFEW_CLASSES, FERV39K_CLASSES, MAFW_CLASSES
from .video_dataset import VideoClsDataset

JPEG = (".jpg", ".jpeg")
# name -> (class names, or None when --nb_classes decides; accepted frame extensions)
DATASETS = {
    "DFEW": (DFEW_CLASSES, JPEG),
    "FERV39K": (FERV39K_CLASSES, JPEG),
    "MAFW": (MAFW_CLASSES, (".png",)),
    "FRAMES": (None, JPEG + (".png",)),
}
ALIASES = {"FERV39k": "FERV39K"}


def build_dataset(is_train: bool, test_mode: bool, args: Namespace) -> tuple[VideoClsDataset, int]:
    """(dataset, nb_classes) for the train (is_train), test (test_mode) or validation split."""
    name = ALIASES.get(args.data_set, args.data_set)
    if name not in DATASETS:
        raise ValueError(f"--data_set must be one of {sorted(DATASETS) + sorted(ALIASES)}, got {args.data_set!r}")
    class_names, extensions = DATASETS[name]
    fixed_classes = len(class_names) if class_names else None
    if fixed_classes is None:
        if args.nb_classes is None or args.nb_classes < 1:
            raise ValueError(f"--data_set FRAMES needs a positive --nb_classes, got {args.nb_classes}")
        nb_classes = args.nb_classes
    else:
        if args.nb_classes is not None and args.nb_classes != fixed_classes:
            raise ValueError(f"{name} has {fixed_classes} classes, but --nb_classes is {args.nb_classes}")
        nb_classes = fixed_classes
    if is_train:
        mode, anno_path = "train", args.train_label_path
    elif test_mode:
        mode, anno_path = "test", args.test_label_path
    else:
        mode, anno_path = "validation", args.val_label_path
    dataset = VideoClsDataset(
        anno_path, args.data_path, mode, nb_classes, extensions,
        clip_len=args.num_frames, sampling_rate=args.sampling_rate, input_size=args.input_size,
        short_side_size=args.short_side_size, test_num_segment=args.test_num_segment,
        test_num_crop=args.test_num_crop, num_sample=args.num_sample, aa=args.aa,
        train_interpolation=args.train_interpolation, reprob=args.reprob, remode=args.remode,
        recount=args.recount, skip_bad_clips=args.skip_bad_clips)
    dataset.class_names = list(class_names) if class_names else [str(i) for i in range(nb_classes)]
    return dataset, nb_classes

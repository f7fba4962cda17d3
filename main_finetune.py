"""Fine-tune and evaluate S2D on DFEW, FERV39K, MAFW (or any frame-folder dataset).

One process: `python main_finetune.py ...`; several: `torchrun --nproc_per_node N main_finetune.py ...`.
Flag names and defaults follow the original S2D code so its shell scripts carry over.
"""
import argparse
import json
import os
import random
import sys
import time
from dataclasses import dataclass

import numpy as np
import torch
from timm.data import rand_augment_transform
from timm.loss import LabelSmoothingCrossEntropy, SoftTargetCrossEntropy
from timm.optim import create_optimizer_v2, list_optimizers
from timm.utils import ModelEmaV3
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader, DistributedSampler

from datasets import BadClipError, ClassBalancedSampler, VideoMixup, build_dataset, multiple_samples_collate
from datasets.bad_clips import TooManyBadClipsError
from datasets.build import ALIASES, DATASETS, dataset_spec, has_fixed_class_names, is_image_dataset
from datasets.check import check_data_of_args
from datasets.description import describe_args
from datasets.mixup import MIXUP_MODES
from datasets.random_erasing import MODES as ERASING_MODES
from datasets.unique_views import UniqueTestViews, collate_views
from engine.bad_clips import (
    bad_clip_state,
    load_bad_clip_state,
    print_bad_clip_summary,
    share_bad_clips,
    skipped_note,
    watch_bad_clips,
    without_skipped_clips,
)
from engine.evaluate import evaluate
from engine.metrics import format_confusion_matrix, plot_confusion_matrix
from engine.schedule import cosine_scheduler
from engine.sdl import SDL
from engine.state import resume_training_state, save_training_state
from engine.train import NonFiniteLossError, train_one_epoch
from models.checkpoint import load_checkpoint, save_checkpoint
from models.fast_paths import EQUAL_SPEEDUPS, prepare_for_speed
from models.freezing import describe_parameters, freeze_for_finetuning, parameter_counts
from models.landmark import DEFAULT_LANDMARK_WEIGHTS
from models.loading import build_model_and_landmark
from models.quantize import quantize_int8
from models.registry import MODEL_CONFIGS, is_image_model
from models.tma import TEMPORAL_ATTENTION_HEADS
from utils.device import DeviceError, choose_device, training_autocast_dtype
from utils.distributed import barrier, get_rank, get_world_size, init_distributed_mode, is_distributed, is_main_process
from utils.files import write_csv_atomically, write_text_atomically
from utils.progress import ProgressLogger, format_duration
from utils.stop import EXIT_STOPPED, stop_on_signals

VAL_METRICS = ["acc1", "acc5", "war", "uar", "weighted_f1", "micro_f1", "macro_f1"]


def get_args_parser():
    p = argparse.ArgumentParser("S2D fine-tuning and evaluation", add_help=True)
    p.add_argument("--batch_size", default=64, type=int, help="clips per process per step")
    p.add_argument("--epochs", default=30, type=int)
    p.add_argument("--update_freq", default=1, type=int, help="gradient accumulation steps")
    p.add_argument("--save_ckpt_freq", default=1, type=int, help="also keep checkpoint-{epoch}.pth every N epochs")

    g = p.add_argument_group("model")
    g.add_argument("--model", default="s2d_base_patch16_224", type=str,
                   help="a video model s2d_*, or an image model s2d_image_* for the static stage")
    g.add_argument("--input_size", default=224, type=int)
    g.add_argument("--dropout_ratio", default=0.5, type=float, help="head dropout")
    g.add_argument("--drop_path", default=0.0, type=float, help="stochastic depth rate of the ViT blocks")
    g.add_argument("--scale_factor", default=0.25, type=float, help="adapter hidden size / embed dim")
    g.add_argument("--fix_lgp", action="store_true", help="also freeze the landmark-guided prompt generators")
    g.add_argument("--model_ema", action="store_true")
    g.add_argument("--model_ema_decay", default=0.9999, type=float)
    g.add_argument("--landmark_weights", default=DEFAULT_LANDMARK_WEIGHTS,
                   help="MobileFaceNet weights, or 'random' (demo and tests only)")

    g = p.add_argument_group("optimisation")
    g.add_argument("--opt", default="adamw", type=str, help="any timm optimizer name")
    g.add_argument("--opt_eps", default=1e-8, type=float)
    g.add_argument("--opt_betas", default=None, type=float, nargs="+")
    g.add_argument("--momentum", default=0.9, type=float, help="SGD momentum")
    g.add_argument("--clip_grad", default=None, type=float, help="max gradient norm (default: no clipping)")
    g.add_argument("--weight_decay", default=0.05, type=float)
    g.add_argument("--weight_decay_end", default=None, type=float, help="cosine wd schedule end (default: constant)")
    g.add_argument("--lr", default=1e-5, type=float, help="base lr for a total batch of 8")
    g.add_argument("--layer_decay", default=1.0, type=float)
    g.add_argument("--warmup_lr", default=1e-7, type=float,
                   help="kept for script compatibility; as in the original the warmup starts from 0")
    g.add_argument("--min_lr", default=1e-8, type=float, help="final lr for a total batch of 256")
    g.add_argument("--warmup_epochs", default=2, type=int)
    g.add_argument("--warmup_steps", default=-1, type=int, help="overrides --warmup_epochs when > 0")
    g.add_argument("--amp_dtype", default="bfloat16", choices=["bfloat16", "float16", "none"],
                   help="autocast dtype on CUDA (float16 adds a gradient scaler; bfloat16 needs compute "
                        "capability 8.0+); CPU runs in float32")

    g = p.add_argument_group("augmentation")
    g.add_argument("--num_sample", default=2, type=int, help="repeated augmentation: views per clip per step")
    g.add_argument("--aa", default="rand-m7-n4-mstd0.5-inc1", type=str, help="RandAugment policy (timm)")
    g.add_argument("--color_jitter", default=0.4, type=float,
                   help="kept for script compatibility; unused (RandAugment replaces it, as in the original)")
    g.add_argument("--smoothing", default=0.1, type=float)
    g.add_argument("--train_interpolation", default="bicubic", type=str)
    g.add_argument("--reprob", default=0.25, type=float)
    g.add_argument("--remode", default="pixel", type=str)
    g.add_argument("--recount", default=1, type=int)
    g.add_argument("--mixup", default=0.8, type=float)
    g.add_argument("--cutmix", default=1.0, type=float)
    g.add_argument("--cutmix_minmax", default=None, type=float, nargs="+")
    g.add_argument("--mixup_prob", default=1.0, type=float)
    g.add_argument("--mixup_switch_prob", default=0.5, type=float)
    g.add_argument("--mixup_mode", default="batch", type=str)
    g.add_argument("--ban_mixup", action="store_true")

    g = p.add_argument_group("data")
    g.add_argument("--data_set", default="DFEW", choices=sorted(DATASETS) + sorted(ALIASES),
                   help="video datasets (frame folders) or, for the static stage, image datasets "
                        "(IMAGES, RAFDB, AffectNet7, AffectNet8: one image per CSV row)")
    g.add_argument("--data_path", default="data/DFEW/Clip/clip_224x224_16f", type=str)
    g.add_argument("--train_label_path", default="", type=str)
    g.add_argument("--val_label_path", default="", type=str,
                   help="validation split for picking the best epoch (default: the test split, as the original)")
    g.add_argument("--test_label_path", default="", type=str)
    g.add_argument("--nb_classes", default=None, type=int,
                   help="class count (default: the data set's; needed for FRAMES and IMAGES without class names)")
    g.add_argument("--class_names", default=None,
                   help="FRAMES / IMAGES: a classes file (one name per line, line k naming label k - 1) or the names "
                        "separated by commas (default: DATA_PATH/classes.txt when present); stored in the checkpoint")
    g.add_argument("--num_frames", default=16, type=int)
    g.add_argument("--sampling_rate", default=1, type=int)
    g.add_argument("--short_side_size", default=224, type=int)
    g.add_argument("--test_num_segment", default=5, type=int)
    g.add_argument("--test_num_crop", default=3, type=int)
    g.add_argument("--use_bds", action="store_true", help="class-balanced oversampling of the training set")
    g.add_argument("--skip_bad_clips", action="store_true",
                   help="drop invalid annotation rows and clips with undecodable frames instead of failing")
    g.add_argument("--max_bad_fraction", default=0.01, type=float,
                   help="with --skip_bad_clips: stop when more than this fraction of a split is bad")
    g.add_argument("--check_data", action="store_true",
                   help="decode every frame of the given train/val/test CSVs (--num_workers processes), "
                        "write bad_clips.csv to --output_dir (or the current folder), then exit")
    g.add_argument("--num_workers", default=4, type=int)
    g.add_argument("--pin_mem", action="store_true")
    g.add_argument("--no_pin_mem", action="store_false", dest="pin_mem")
    p.set_defaults(pin_mem=True)

    g = p.add_argument_group("SDL (emotion-anchor self-distillation)")
    g.add_argument("--sdl", action="store_true")
    g.add_argument("--K", default=2, type=int, help="top-k queue entries per class")
    g.add_argument("--qs", default=16, type=int, help="queue size per class")
    g.add_argument("--sdl_update_freq", default=50, type=int)

    g = p.add_argument_group("run")
    g.add_argument("--finetune", default="", help="start from this pre-trained checkpoint: a static image model "
                   "for a video model (freezes the backbone), MAE weights for an image model (all train)")
    g.add_argument("--resume", default="", help="resume training from this checkpoint")
    g.add_argument("--auto_resume", action="store_true")
    g.add_argument("--no_auto_resume", action="store_false", dest="auto_resume")
    p.set_defaults(auto_resume=True)
    g.add_argument("--trust_checkpoint", action="store_true",
                   help="allow arbitrary pickled objects in checkpoints (only for files you trust)")
    g.add_argument("--eval", action="store_true", help="only run the multi-view test of --resume or --finetune")
    g.add_argument("--dist_eval", action="store_true", help="shard validation over processes")
    g.add_argument("--val_metric", default="acc1", choices=VAL_METRICS)
    g.add_argument("--save_feature", action="store_true", help="also save the test features and logits")
    g.add_argument("--no_dedup_views", action="store_false", dest="dedup_views",
                   help="compute every test view, also those identical by construction to another view of the "
                        "clip (same results, more forward passes; for checking)")
    g.add_argument("--output_dir", default="", help="where checkpoints and results go (empty: nothing saved)")
    g.add_argument("--log_dir", default=None, help="TensorBoard folder")
    g.add_argument("--device", default=None, help="cuda or cpu (default: cuda when available)")
    g.add_argument("--compile", action="store_true", help="torch.compile the model and the landmark network")
    g.add_argument("--no_speedups", action="store_true",
                   help="run the reference computation: without the layout and BatchNorm-folding speed-ups that give "
                        "the same outputs and gradients (models.fast_paths.EQUAL_SPEEDUPS; for checking)")
    g.add_argument("--cpu_int8", action="store_true",
                   help="with --eval on the CPU: int8 Linear layers (dynamic quantization), faster, near-identical "
                        "predictions (docs/BENCHMARKS.md)")
    g.add_argument("--seed", default=0, type=int)
    g.add_argument("--print_freq", default=10, type=int)
    return p


INTERPOLATIONS = ("bicubic", "bilinear", "lanczos", "hamming", "random")  # the original's; random: per operation
POSITIVE = "a positive integer"
PROBABILITY = "a number in [0, 1]"


def as_typed(flag: str, value) -> str:
    """`--flag value` as typed (a switch alone, an empty or spaced string quoted)."""
    if isinstance(value, bool):
        return f"--{flag}"
    if isinstance(value, (list, tuple)):
        value = " ".join(map(str, value))
    elif isinstance(value, str) and (not value or " " in value):
        value = repr(value)
    return f"--{flag} {value}"


def _is_rand_augment(policy) -> bool:
    if policy in (None, "", "none"):
        return True
    try:
        return policy.startswith("rand") and rand_augment_transform(policy, {}) is not None
    except (AssertionError, ValueError, KeyError):
        return False


def _is_optimizer(name: str) -> bool:
    return name.lower().removeprefix("lookahead_") in list_optimizers()


def _adapter_fits(config, ratio) -> bool:
    hidden = int(config["embed_dim"] * ratio)
    return hidden > 0 and hidden % TEMPORAL_ATTENTION_HEADS == 0


def mixup_on(args) -> bool:
    """Whether training mixes clips (mixup or cutmix)."""
    return not args.ban_mixup and (args.mixup > 0 or args.cutmix > 0 or args.cutmix_minmax is not None)


def invalid_flags(args) -> list[str]:
    """One line per invalid flag value: the flag, its value and what is expected (docs/TRAINING.md, "Flags checked
    at start-up"). Looks only at the arguments and at whether the named files and folders exist."""
    config = MODEL_CONFIGS.get(args.model)
    video = config is not None and not is_image_model(args.model)
    minmax, betas = args.cutmix_minmax, args.opt_betas
    label_files = ("train_label_path", "val_label_path", "test_label_path")
    required = () if args.check_data else ("test_label_path",) if args.eval else ("train_label_path",
                                                                                   "test_label_path")
    checks = [
        *((flag, getattr(args, flag) >= 1, POSITIVE) for flag in (
            "batch_size", "epochs", "update_freq", "save_ckpt_freq", "print_freq", "num_frames", "sampling_rate",
            "test_num_segment", "test_num_crop", "num_sample", "recount", "qs", "sdl_update_freq")),
        ("model", config is not None, f"one of {', '.join(sorted(MODEL_CONFIGS))}"),
        ("model", not (video and is_image_dataset(args.data_set)),
         f"an image model: --data_set {args.data_set} holds images; train an image model (s2d_image_*) on it"),
        ("input_size", config is None or args.input_size == config["img_size"],
         f"{config and config['img_size']}, the input size of --model {args.model}"),
        ("short_side_size", args.short_side_size >= args.input_size, f"at least --input_size {args.input_size}"),
        ("nb_classes", args.nb_classes is None or args.nb_classes >= 1, POSITIVE),
        ("scale_factor", not video or _adapter_fits(config, args.scale_factor),
         f"a ratio r > 0 with int({config and config['embed_dim']} x r) a multiple of {TEMPORAL_ATTENTION_HEADS} "
         "(the temporal attention's heads)"),
        ("dropout_ratio", 0 <= args.dropout_ratio < 1, "a number in [0, 1)"),
        ("drop_path", 0 <= args.drop_path < 1, "a number in [0, 1)"),
        ("model_ema_decay", 0 <= args.model_ema_decay <= 1, PROBABILITY),
        ("K", 1 <= args.K <= args.qs, f"an integer in [1, --qs {args.qs}]"),
        ("opt", _is_optimizer(args.opt), "a timm optimizer name such as adamw, sgd or momentum"),
        ("opt_eps", args.opt_eps > 0, "a positive number"),
        ("opt_betas", betas is None or (len(betas) == 2 and all(0 <= b < 1 for b in betas)),
         "two numbers in [0, 1)"),
        ("momentum", 0 <= args.momentum <= 1, PROBABILITY),
        ("clip_grad", args.clip_grad is None or args.clip_grad > 0, "a positive gradient norm"),
        ("weight_decay", args.weight_decay >= 0, "a non-negative number"),
        ("weight_decay_end", args.weight_decay_end is None or args.weight_decay_end >= 0, "a non-negative number"),
        ("lr", args.lr > 0, "a positive number"),
        *((flag, getattr(args, flag) >= 0, "a non-negative number") for flag in (
            "min_lr", "warmup_lr", "color_jitter", "mixup", "cutmix")),
        ("layer_decay", 0 < args.layer_decay <= 1, "a number in (0, 1]"),
        ("warmup_epochs", args.warmup_epochs >= 0, "a non-negative integer"),
        ("warmup_steps", args.warmup_steps >= -1, "-1 (use --warmup_epochs) or a non-negative integer"),
        ("aa", _is_rand_augment(args.aa), "none or a RandAugment policy such as rand-m7-n4-mstd0.5-inc1"),
        ("smoothing", 0 <= args.smoothing < 1, "a number in [0, 1)"),
        ("train_interpolation", args.train_interpolation in INTERPOLATIONS, f"one of {', '.join(INTERPOLATIONS)}"),
        ("reprob", 0 <= args.reprob <= 1, PROBABILITY),
        ("remode", args.remode in ERASING_MODES, f"one of {', '.join(ERASING_MODES)}"),
        ("cutmix_minmax", minmax is None or (len(minmax) == 2 and 0 < minmax[0] < minmax[1] <= 1),
         "two ratios 0 < min < max <= 1"),
        ("mixup_prob", 0 <= args.mixup_prob <= 1, PROBABILITY),
        ("mixup_switch_prob", 0 <= args.mixup_switch_prob <= 1, PROBABILITY),
        ("mixup_mode", args.mixup_mode in MIXUP_MODES, f"one of {', '.join(MIXUP_MODES)}"),
        ("batch_size", not mixup_on(args) or args.batch_size * args.num_sample % 2 == 0,
         "an even number of clips per step (--batch_size x --num_sample) for mixup/cutmix, or --ban_mixup"),
        ("max_bad_fraction", 0 <= args.max_bad_fraction <= 1, PROBABILITY),
        ("num_workers", args.num_workers >= 0, "a non-negative integer"),
        ("seed", 0 <= args.seed < 2 ** 31, "an integer in [0, 2**31)"),
        ("data_path", os.path.isdir(args.data_path), "an existing folder of clip frames (docs/DATA.md)"),
        *((flag, os.path.isfile(getattr(args, flag)) if getattr(args, flag) or flag in required else True,
           "an existing annotation CSV file (docs/DATA.md)") for flag in label_files),
        ("landmark_weights", args.landmark_weights == "random" or os.path.isfile(args.landmark_weights),
         "the MobileFaceNet weights file (ckpts/README.md) or random"),
        *((flag, not getattr(args, flag) or os.path.isfile(getattr(args, flag)), "an existing checkpoint file")
          for flag in ("finetune", "resume")),
        ("eval", not args.eval or bool(args.resume or args.finetune),
         "the checkpoint to evaluate, given with --resume or --finetune"),
        ("cpu_int8", not args.cpu_int8 or args.eval, "--eval: int8 is for evaluating on the CPU"),
        ("check_data", not args.check_data or any(getattr(args, flag) for flag in label_files),
         "at least one of --train_label_path, --val_label_path, --test_label_path"),
        *((flag, not getattr(args, flag) or not os.path.isfile(getattr(args, flag)), "a folder, not a file")
          for flag in ("output_dir", "log_dir")),
    ]
    problems = [f"{as_typed(flag, getattr(args, flag))}: expected {expected}"
                for flag, ok, expected in checks if not ok]
    if config is not None and (args.nb_classes is None or args.nb_classes >= 1):
        try:
            dataset_spec(args)
        except ValueError as error:
            problems.append(str(error))
    return problems


def start_up(args):
    """The flag layer's last step, before anything is built: the data's class names (--class_names, or
    DATA_PATH/classes.txt) and clip sampling (DATA_PATH/dataset.json), stored in args and so in the checkpoints
    (datasets/description.py); every flag checked (one line per invalid value, then exit); --nb_classes. After
    this, `args` is not changed but by the original's in-place --lr scaling (build_training)."""
    try:
        describe_args(args, names_fixed=has_fixed_class_names(args.data_set))
    except (OSError, ValueError) as error:
        sys.exit(f"error: {error}")
    problems = invalid_flags(args)
    if problems:
        sys.exit("\n".join(f"error: {problem}" for problem in problems))
    args.nb_classes = dataset_spec(args)[2]


def start_run(args):
    """Processes, device, precision and seeds: (device, autocast dtype or None); the flags that depend on the
    device are checked here."""
    try:
        args.device = choose_device(args.device)
    except DeviceError as error:
        sys.exit(f"error: {error}")
    init_distributed_mode(args)
    device = torch.device(args.device)
    try:
        amp_dtype = training_autocast_dtype(device, args.amp_dtype)
    except DeviceError as error:
        sys.exit(f"error: {error}")
    if args.cpu_int8 and device.type != "cpu":
        sys.exit("error: --cpu_int8 is for --eval on the CPU (pass --eval --device cpu)")
    set_seed(args.seed + get_rank())
    if args.output_dir:
        os.makedirs(args.output_dir, exist_ok=True)
    if not args.val_label_path and not args.eval:
        args.val_label_path = args.test_label_path
        print("note: validating on the TEST split (as the original code does), so 'best' epoch numbers are "
              "selected on test data; pass --val_label_path for a separate validation split")
    print("arguments: " + json.dumps(vars(args), sort_keys=True))
    return device, amp_dtype


def set_seed(seed: int) -> None:
    torch.manual_seed(seed)
    np.random.seed(seed)
    random.seed(seed)


def _eval_loader(dataset, sampler, batch_size, args, collate_fn=None):
    """Validation or test loader; its workers' seeds come from the global torch RNG, as the original's do (the
    random validation windows then resume exactly: the RNG states are checkpointed)."""
    return DataLoader(dataset, sampler=sampler, batch_size=batch_size, num_workers=args.num_workers,
                      pin_memory=args.pin_mem and args.device.startswith("cuda"), collate_fn=collate_fn)


def build_test_loader(args, num_tasks, rank):
    """Multi-view test loader (distinct views only unless --no_dedup_views), always sharded over processes
    (views gathered before merging)."""
    dataset, _ = build_dataset(is_train=False, test_mode=True, args=args)
    views, collate_fn = dataset, None
    if args.dedup_views:
        views, collate_fn = UniqueTestViews(dataset), collate_views
        print(f"test views: {views.summary()}")
    sampler = DistributedSampler(views, num_replicas=num_tasks, rank=rank, shuffle=False)
    return dataset, watch_bad_clips(_eval_loader(views, sampler, args.batch_size, args, collate_fn), drop_replaced=True)


def build_train_val_loaders(args, num_tasks, rank):
    """Training loader (shuffled or class-balanced, epoch-seeded) and single-view validation loader."""
    dataset_train, _ = build_dataset(is_train=True, test_mode=False, args=args)
    dataset_val, _ = build_dataset(is_train=False, test_mode=False, args=args)
    if args.use_bds:
        sampler_train = ClassBalancedSampler(dataset_train.labels, num_replicas=num_tasks, rank=rank, seed=args.seed)
    else:
        sampler_train = DistributedSampler(dataset_train, num_replicas=num_tasks, rank=rank, shuffle=True,
                                           seed=args.seed)
    loader_train = DataLoader(dataset_train, sampler=sampler_train, batch_size=args.batch_size, drop_last=True,
                              num_workers=args.num_workers,
                              pin_memory=args.pin_mem and args.device.startswith("cuda"),
                              collate_fn=multiple_samples_collate if args.num_sample > 1 else None)
    sampler_val = DistributedSampler(dataset_val, num_replicas=num_tasks, rank=rank, shuffle=False) \
        if args.distributed and args.dist_eval else None
    loader_val = _eval_loader(dataset_val, sampler_val, int(1.5 * args.batch_size), args)
    return watch_bad_clips(loader_train, drop_replaced=False), watch_bad_clips(loader_val, drop_replaced=True)


def model_arguments(args) -> dict:
    """models.build_model's arguments of the --model: a video model (S2D) or a static-stage image model
    (S2DImage)."""
    if is_image_model(args.model):
        return dict(num_classes=args.nb_classes, drop_path_rate=args.drop_path)
    return dict(num_classes=args.nb_classes, num_frames=args.num_frames, head_dropout=args.dropout_ratio,
                adapter_ratio=args.scale_factor, drop_path_rate=args.drop_path)


def build_criterion(args):
    """(loss, video mixup or None): soft-target CE with mixup, else label smoothing, else plain CE."""
    if mixup_on(args):
        mixup_fn = VideoMixup(mixup_alpha=args.mixup, cutmix_alpha=args.cutmix, cutmix_minmax=args.cutmix_minmax,
                              prob=args.mixup_prob, switch_prob=args.mixup_switch_prob, mode=args.mixup_mode,
                              label_smoothing=args.smoothing, num_classes=args.nb_classes)
        return SoftTargetCrossEntropy(), mixup_fn
    if args.smoothing > 0:
        return LabelSmoothingCrossEntropy(smoothing=args.smoothing), None
    return torch.nn.CrossEntropyLoss(), None


def report_test(args, tag, metrics, predictions, names, features=None, records=None):
    """Print the test results and write pred csv, confusion matrix (txt, png) and optional features."""
    clip_ids, labels, scores = predictions
    conf_text = format_confusion_matrix(metrics["confusion_matrix"], names)
    print(f"[{tag}] {metrics['num_clips']} clips: UAR {metrics['uar']:.2f}%  WAR {metrics['war']:.2f}%"
          f"{skipped_note(metrics)}  top-5 {metrics['acc5']:.2f}%  weighted F1 {metrics['weighted_f1']:.2f}  "
          f"macro F1 {metrics['macro_f1']:.2f}")
    print("per-class accuracy: " + ", ".join(
        f"{n} {'n/a' if a is None else f'{a:.1f}%'}" for n, a in zip(names, metrics["class_acc"])))
    print(conf_text)
    if not args.output_dir:
        return
    suffix = "" if tag in ("last", "eval") else f"_{tag}"
    write_csv_atomically(os.path.join(args.output_dir, f"pred{suffix}.csv"), ("id", "label", "pred"),
                         ((c, label, s.argmax()) for c, label, s in zip(clip_ids, labels, scores)))
    write_text_atomically(os.path.join(args.output_dir, f"confusion_matrix_{tag}.txt"), conf_text + "\n")
    plot_confusion_matrix(metrics["confusion_matrix"], names,
                          os.path.join(args.output_dir, f"confusion_matrix_{tag}.png"),
                          f"{args.data_set} {tag}: UAR {metrics['uar']:.2f}%  WAR {metrics['war']:.2f}%")
    if features is not None:
        save_checkpoint({"views": [(r.clip_id, r.segment, r.crop) for r in records],
                         "logits": torch.tensor(np.stack([r.logits for r in records])),
                         "labels": torch.tensor([r.label for r in records]), "features": torch.stack(features)},
                        os.path.join(args.output_dir, f"features_{tag}.pt"))


def run_test(args, tag, model, landmark, loader, device, amp_dtype, names):
    """Multi-view test of every clip, gathered over processes; the main process reports and writes files."""
    metrics, predictions, records, features = without_skipped_clips(evaluate(
        model, landmark, loader, device, args.nb_classes, amp_dtype, gather=True, keep_features=args.save_feature,
        progress=ProgressLogger(f"Test ({tag} model):", args.print_freq)), loader, args.nb_classes)
    if is_main_process():
        report_test(args, tag, metrics, predictions, names, features if args.save_feature else None, records)
    return metrics


def append_log(args, entry):
    if args.output_dir and is_main_process():
        with open(os.path.join(args.output_dir, "log.txt"), "a") as f:
            f.write(json.dumps(entry) + "\n")


@dataclass
class Models:
    """The model (DDP-wrapped under torchrun), the model itself, the frozen landmark network, SDL and EMA."""
    model: torch.nn.Module
    model_without_ddp: torch.nn.Module
    landmark: torch.nn.Module
    sdl: SDL | None
    model_ema: ModelEmaV3 | None


def build_models(args, device):
    """The --model with its starting weights (--finetune or, for --eval, the checkpoint), the fine-tuning
    freezing, the landmark network, SDL and EMA, int8, the speed-ups and DDP."""
    model, landmark = build_model_and_landmark(
        args.model, args.landmark_weights, (args.resume or args.finetune) if args.eval else args.finetune or None,
        "finetuned" if args.eval else "pretrained", args.trust_checkpoint, **model_arguments(args))
    if args.finetune and not args.eval and not is_image_model(args.model):
        freeze_for_finetuning(model, fix_lgp=args.fix_lgp)
    elif not args.eval:
        start = f"from {args.finetune}" if args.finetune else "from scratch"
        print(f"training {args.model} {start}, every parameter but the fixed pos_embed "
              f"({describe_parameters(model)})")
    model.to(device)
    landmark.to(device)
    sdl = SDL(args.nb_classes, model.embed_dim, k=args.K, queue_size=args.qs).to(device) if args.sdl else None
    model_ema = ModelEmaV3(model, decay=args.model_ema_decay) if args.model_ema and not args.eval else None
    if args.cpu_int8:
        model = quantize_int8(model)
    # after the EMA copy: a deep copy of a compiled module would call the original's forward
    prepare_for_speed(model, landmark, channels_last=device.type == "cuda", compile=args.compile,
                      speedups=() if args.no_speedups else EQUAL_SPEEDUPS)
    model_without_ddp = model
    if args.distributed:
        DistributedDataParallel._set_params_and_buffers_to_ignore_for_model(model, model.unused_parameter_names())
        model = DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None)
    return Models(model, model_without_ddp, landmark, sdl, model_ema)


@dataclass
class Training:
    """The optimisation of a run and where it stands."""
    optimizer: torch.optim.Optimizer
    scaler: torch.amp.GradScaler | None
    lr_schedule: np.ndarray
    wd_schedule: np.ndarray
    steps_per_epoch: int
    start_epoch: int = 0
    best_metric: float | None = None
    best_epoch: int | None = None


def build_training(args, models, loader_train, loader_val, amp_dtype):
    """Learning-rate scaling, optimizer, gradient scaler and schedules; then resume from --resume or, with
    --auto_resume, from --output_dir/checkpoint.pth."""
    total_batch = args.batch_size * args.update_freq * get_world_size()
    steps_per_epoch = len(loader_train.dataset) // total_batch
    if steps_per_epoch == 0:
        sys.exit(f"error: {len(loader_train.dataset)} training clips are fewer than one total batch of {total_batch}")
    args.lr = args.lr * total_batch / 8  # in place, as the original: its checkpoints store the scaled values
    args.min_lr = args.min_lr * total_batch / 256
    print(f"total batch {total_batch}, {steps_per_epoch} steps per epoch, lr {args.lr:.3g}, min lr {args.min_lr:.3g}")
    opt_kwargs = {"eps": args.opt_eps, **({"betas": tuple(args.opt_betas)} if args.opt_betas else {})}
    if args.opt.lower().endswith("sgd") or args.opt.lower() == "momentum":
        opt_kwargs = {"momentum": args.momentum}
    optimizer = create_optimizer_v2(models.model_without_ddp, opt=args.opt, lr=args.lr,
                                    weight_decay=args.weight_decay,
                                    layer_decay=args.layer_decay if args.layer_decay < 1.0 else None, **opt_kwargs)
    training = Training(
        optimizer, torch.amp.GradScaler("cuda") if amp_dtype == torch.float16 else None,
        cosine_scheduler(args.lr, args.min_lr, args.epochs, steps_per_epoch, args.warmup_epochs, args.warmup_steps),
        cosine_scheduler(args.weight_decay, args.weight_decay if args.weight_decay_end is None
                         else args.weight_decay_end, args.epochs, steps_per_epoch),
        steps_per_epoch)
    resume_path = args.resume
    if not resume_path and args.auto_resume and args.output_dir:
        candidate = os.path.join(args.output_dir, "checkpoint.pth")
        resume_path = candidate if os.path.exists(candidate) else ""
    if resume_path:
        checkpoint = resume_training_state(resume_path, model=models.model_without_ddp, optimizer=optimizer,
                                           scaler=training.scaler, sdl=models.sdl, model_ema=models.model_ema,
                                           trust=args.trust_checkpoint)
        training.start_epoch = checkpoint["epoch"] + 1
        training.best_metric, training.best_epoch = checkpoint.get("best_metric"), checkpoint.get("best_epoch")
        load_bad_clip_state(checkpoint.get("bad_clips", {}), loader_train, loader_val)
        print(f"resumed from {resume_path}: continuing at epoch {training.start_epoch}")
    return training


def save_training(args, name, epoch, models, training, loader_train, loader_val):
    if args.output_dir and is_main_process():
        save_training_state(os.path.join(args.output_dir, name), model=models.model_without_ddp,
                            optimizer=training.optimizer, scaler=training.scaler, epoch=epoch, args=args,
                            sdl=models.sdl, model_ema=models.model_ema, best_metric=training.best_metric,
                            best_epoch=training.best_epoch, bad_clips=bad_clip_state(loader_train, loader_val))


def train_epochs(args, models, training, loader_train, loader_val, device, amp_dtype):
    """Every remaining epoch: train, validate, keep the best, checkpoint, log."""
    criterion, mixup_fn = build_criterion(args)
    steps_per_epoch, start_epoch = training.steps_per_epoch, training.start_epoch
    log_writer = None
    if args.log_dir and is_main_process():
        from torch.utils.tensorboard import SummaryWriter
        log_writer = SummaryWriter(args.log_dir, purge_step=start_epoch * steps_per_epoch if start_epoch else None)
    print(f"training epochs {start_epoch}..{args.epochs - 1}")
    start_time = time.time()
    for epoch in range(start_epoch, args.epochs):
        loader_train.sampler.set_epoch(epoch)
        train_stats = train_one_epoch(
            models.model, models.landmark, criterion, loader_train, training.optimizer, device, epoch,
            steps_per_epoch=steps_per_epoch, update_freq=args.update_freq, lr_schedule=training.lr_schedule,
            wd_schedule=training.wd_schedule, scaler=training.scaler, amp_dtype=amp_dtype, clip_grad=args.clip_grad,
            model_ema=models.model_ema, mixup_fn=mixup_fn, sdl=models.sdl, sdl_update_freq=args.sdl_update_freq,
            log_writer=log_writer, progress=ProgressLogger(f"Epoch [{epoch}/{args.epochs - 1}]", args.print_freq),
            steps_after=(args.epochs - epoch - 1) * steps_per_epoch * args.update_freq)
        val_stats, *_ = without_skipped_clips(evaluate(
            models.model, models.landmark, loader_val, device, args.nb_classes, amp_dtype,
            gather=isinstance(loader_val.sampler, DistributedSampler)), loader_val, args.nb_classes)
        share_bad_clips(loader_train)
        improved = training.best_metric is None or val_stats[args.val_metric] > training.best_metric
        if improved:
            training.best_metric, training.best_epoch = val_stats[args.val_metric], epoch
        save_training(args, "checkpoint.pth", epoch, models, training, loader_train, loader_val)
        if improved:
            save_training(args, "checkpoint-best.pth", "best", models, training, loader_train, loader_val)
        if (epoch + 1) % args.save_ckpt_freq == 0:
            save_training(args, f"checkpoint-{epoch}.pth", epoch, models, training, loader_train, loader_val)
        split = "val" if args.val_label_path != args.test_label_path else "val(test split)"
        print(f"epoch {epoch}: {split} acc1 {val_stats['acc1']:.2f}%  UAR {val_stats['uar']:.2f}%  "
              f"WAR {val_stats['war']:.2f}%{skipped_note(val_stats)}  loss {val_stats['loss']:.4f}  | best "
              f"{args.val_metric} {training.best_metric:.2f} (epoch {training.best_epoch})")
        if log_writer is not None:
            for name in ("acc1", "acc5", "loss", "uar", "war"):
                log_writer.add_scalar(f"val/{name}", val_stats[name], epoch)
            log_writer.flush()
        append_log(args, {"epoch": epoch, **{f"train_{k}": v for k, v in train_stats.items()},
                          **{f"val_{k}": v for k, v in val_stats.items() if k != "confusion_matrix"},
                          "val_on_test_split": args.val_label_path == args.test_label_path,
                          **({"train_replaced_samples": loader_train.replaced,
                              "train_skipped_clips": sorted(bad_clip_state(loader_train)["train"])}
                             if args.skip_bad_clips else {}),
                          "n_trainable_parameters": parameter_counts(models.model)[1]})
        elapsed = time.time() - start_time
        remaining = elapsed / (epoch - start_epoch + 1) * (args.epochs - epoch - 1)
        print(f"elapsed {format_duration(elapsed)}, remaining about {format_duration(remaining)}")
    if log_writer is not None:
        log_writer.close()


def final_test(args, models, training, loaders, device, amp_dtype, names):
    """The multi-view test of the last model and (with --output_dir) of the best one; logged, returned."""
    loader_train, loader_val, loader_test = loaders
    final = {}
    for tag in ("last", "best") if args.output_dir else ("last",):
        if tag == "best":
            barrier()
            load_checkpoint(models.model_without_ddp, os.path.join(args.output_dir, "checkpoint-best.pth"),
                            "finetuned", trust=args.trust_checkpoint)
        metrics = run_test(args, tag, models.model, models.landmark, loader_test, device, amp_dtype, names)
        final.update({f"final_{tag}_{k}": v for k, v in metrics.items()})
    final["best_epoch"] = training.best_epoch
    if args.skip_bad_clips:
        print_bad_clip_summary(loader_train, loader_val, loader_test)
        final["skipped_clips"] = bad_clip_state(loader_train, loader_val, loader_test)
    append_log(args, final)
    return final


def evaluate_checkpoint(args, models, loader_test, device, amp_dtype, names):
    """--eval: the multi-view test of the given checkpoint, logged and returned."""
    metrics = run_test(args, "eval", models.model, models.landmark, loader_test, device, amp_dtype, names)
    print_bad_clip_summary(loader_test)
    append_log(args, {"final_uar": metrics["uar"], "final_war": metrics["war"],
                      **{f"final_{k}": v for k, v in metrics.items() if k not in ("uar", "war")},
                      "checkpoint": args.resume or args.finetune, "test_label_path": args.test_label_path})
    return metrics


def main(args):
    start_up(args)
    if args.check_data:
        sys.exit(1 if check_data_of_args(args) else 0)
    device, amp_dtype = start_run(args)
    dataset_test, loader_test = build_test_loader(args, get_world_size(), get_rank())
    models = build_models(args, device)
    if args.eval:
        return evaluate_checkpoint(args, models, loader_test, device, amp_dtype, dataset_test.class_names)
    loader_train, loader_val = build_train_val_loaders(args, get_world_size(), get_rank())
    training = build_training(args, models, loader_train, loader_val, amp_dtype)
    train_epochs(args, models, training, loader_train, loader_val, device, amp_dtype)
    return final_test(args, models, training, (loader_train, loader_val, loader_test), device, amp_dtype,
                      dataset_test.class_names)


if __name__ == "__main__":
    cli_args = get_args_parser().parse_args()
    try:
        with stop_on_signals():  # Ctrl-C or SIGTERM: every process stops before its next step or batch
            main(cli_args)
    except KeyboardInterrupt:
        print("interrupted: the checkpoints written are those of the epochs finished before", file=sys.stderr)
        sys.exit(EXIT_STOPPED)
    except NonFiniteLossError as error:
        sys.exit(f"error: {error}")
    except TooManyBadClipsError as error:  # maybe re-raised from a DataLoader worker, with its traceback
        sys.exit(f"error: {BadClipError.summary(error)}")
    except BadClipError as error:
        sys.exit(f"error: {BadClipError.summary(error)}; pass --skip_bad_clips to replace such clips "
                 "(scripts/check_data.py lists them all)")
    finally:
        if is_distributed():
            torch.distributed.destroy_process_group()

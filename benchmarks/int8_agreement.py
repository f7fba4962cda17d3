"""Agreement of --cpu_int8 with float32 on a test set: top-1 agreement, largest class-probability difference,
UAR/WAR and test time of both, for any fine-tuned checkpoint and data (main_finetune.py's flags).

    python benchmarks/int8_agreement.py --finetune output/demo/checkpoint.pth --model s2d_tiny_patch8_64 \
        --data_set DFEW --data_path data/synthetic_dfew_64px_100x4f/clips \
        --test_label_path data/synthetic_dfew_64px_100x4f/splits/test_set_1.csv --input_size 64 --short_side_size 64 \
        --num_frames 4 --landmark_weights random --batch_size 8 --num_workers 0
"""
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run as a file: import main_finetune
from engine.evaluate import evaluate  # noqa: E402
from main_finetune import build_test_loader, get_args_parser, model_arguments, start_up  # noqa: E402
from models.loading import build_model_and_landmark  # noqa: E402
from models.quantize import quantize_int8  # noqa: E402
from utils.progress import ProgressLogger  # noqa: E402


def compare(args):
    """{'fp32': {...}, 'int8': {...}, 'top1_agreement': %, 'max_probability_difference': float, ...}."""
    checkpoint = args.resume or args.finetune
    args.device, args.distributed = "cpu", False
    _, loader = build_test_loader(args, 1, 0)
    model, landmark = build_model_and_landmark(args.model, args.landmark_weights, checkpoint, "finetuned",
                                               args.trust_checkpoint, **model_arguments(args))
    results, scores = {}, {}
    for name, candidate in (("fp32", model), ("int8", quantize_int8(model))):
        start = time.perf_counter()
        metrics, (_, _, scores[name]), *_ = evaluate(
            candidate, landmark, loader, torch.device("cpu"), args.nb_classes,
            progress=ProgressLogger(f"{name}:", args.print_freq))
        results[name] = {"seconds": round(time.perf_counter() - start, 2), "uar": metrics["uar"],
                         "war": metrics["war"]}
    agree = scores["fp32"].argmax(1) == scores["int8"].argmax(1)
    return {**results, "checkpoint": checkpoint, "num_clips": len(agree),
            "top1_agreement": 100.0 * float(agree.mean()),
            "max_probability_difference": float(np.abs(scores["fp32"] - scores["int8"]).max()),
            "speed_up": round(results["fp32"]["seconds"] / results["int8"]["seconds"], 2)}


def main(argv=None):
    parser = get_args_parser()
    parser.description = __doc__.splitlines()[0]
    args = parser.parse_args(argv)
    if not (args.resume or args.finetune):
        parser.error("pass the fine-tuned checkpoint with --finetune or --resume")
    start_up(args)
    print(json.dumps(compare(args), indent=2))


if __name__ == "__main__":
    main()

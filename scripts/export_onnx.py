"""Export a fine-tuned checkpoint's whole video model (S2D with its MobileFaceNet landmark network) to one ONNX file.

    python scripts/export_onnx.py --checkpoint ckpts/<fine-tuned>.pth --output s2d.onnx

Input `video`: float32 N x 3 x T x H x W (dynamic N), normalised as the metadata says; outputs `logits` (N x K)
and `feature` (N x D, what predict.py --features writes). The file's metadata holds the class names, num_frames,
input size, normalisation, window policy, the checkpoint's hash and the exporter's versions (docs/PREDICT.md).
The export is then run in ONNX Runtime on drawn faces and compared with PyTorch (exit 1 if it differs by more
than 1e-5 of the largest logit). Exit codes: 0 done, 1 the check failed, 2 bad argument, 4 bad checkpoint.
"""
import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run as a file: import inference
from datasets.build import ALIASES, DATASETS  # noqa: E402
from inference.backends import OnnxRuntimeRunner, TorchRunner, agreement, check_clips  # noqa: E402
from inference.export import export_onnx  # noqa: E402
from inference.model import CheckpointError, VideoModel  # noqa: E402

TOLERANCE = 1e-5  # of the largest |logit|


def get_args_parser():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--checkpoint", required=True, help="fine-tuned checkpoint (the authors' or this project's)")
    p.add_argument("--output", required=True, help="the ONNX file to write")
    p.add_argument("--landmark_weights", default="ckpts/mobilefacenet_model_best.pth.tar",
                   help="MobileFaceNet weights, or 'random' (demo and tests only)")
    p.add_argument("--model", default=None, help="default: the checkpoint's, else s2d_base_patch16_224")
    p.add_argument("--data_set", default=None, choices=sorted(DATASETS) + sorted(ALIASES),
                   help="the class names and window policy for checkpoints that store none (the authors' files)")
    p.add_argument("--trust_checkpoint", action="store_true",
                   help="allow arbitrary pickled objects in checkpoints (only for files you trust)")
    p.add_argument("--no_check", action="store_true", help="skip the ONNX Runtime check against PyTorch")
    return p


def main(argv=None):
    args = get_args_parser().parse_args(argv)
    if Path(args.output).is_dir():
        print(f"error: --output {args.output} is a folder; give the ONNX file's path", file=sys.stderr)
        return 2
    try:
        video_model = VideoModel(args.checkpoint, args.landmark_weights, "cpu", trust=args.trust_checkpoint,
                                 backend="torch", precision="fp32", model=args.model, data_set=args.data_set)
    except CheckpointError as error:
        print(f"error: {error}", file=sys.stderr)
        return 4
    export_onnx(video_model, args.output)
    print(f"wrote {args.output}", file=sys.stderr)
    if args.no_check:
        return 0
    inputs = check_clips(video_model, 2)
    measured = agreement(TorchRunner(video_model.model, video_model.landmark, video_model.device, "fp32")(inputs),
                         OnnxRuntimeRunner(args.output)(inputs))
    difference = measured["max_logit_difference"] / max(measured["largest_logit"], 1e-12)
    print(f"ONNX Runtime vs PyTorch on 2 drawn faces: largest |logit difference| {measured['max_logit_difference']:.2g}"
          f" ({difference:.2g} of the largest logit), features {measured['max_feature_difference']:.2g}",
          file=sys.stderr)
    return 0 if difference <= TOLERANCE else 1


if __name__ == "__main__":
    sys.exit(main())

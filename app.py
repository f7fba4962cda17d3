"""A web page over the video pipeline (`inference`): upload a video, see each face's emotion timeline, the
per-face summary and the annotated video, and download predictions.csv and summary.json; or, in the Live tab,
see the emotion of each face the browser's camera films, as it films.

    python app.py                                  # the demo model: run `bash scripts/demo.sh` first
    python app.py --checkpoint ckpts/<fine-tuned>.pth --landmark_weights ckpts/mobilefacenet_model_best.pth.tar

Serves on http://127.0.0.1:7860 (this machine only; --host 0.0.0.0 to reach it from others). Uploads and
analyses are written into a temporary folder, removed when the app stops; the page keeps the files of its last
--keep_analyses analyses for --keep_hours at most. See docs/APP.md.
"""
import argparse
import atexit
import os
import shutil
import sys
import tempfile

from datasets.build import ALIASES, DATASETS
from inference import AnalysisError
from inference.backends import BACKENDS, PRECISIONS
from models.landmark import DEFAULT_LANDMARK_WEIGHTS
from predict import exit_code
from utils.stop import EXIT_STOPPED, stop_on_signals, wait_for_stop
from webapp.analysis import VideoAnalyses, find_models
from webapp.live import LiveSessions

DEMO_CHECKPOINT = "output/demo/checkpoint.pth"  # what scripts/demo.sh trains and writes beside it
DEMO_SAMPLE_VIDEO = "output/demo/synthetic.mp4"
MAKE_SAMPLE = ("No sample video: `bash scripts/demo.sh` makes it, or `python scripts/make_synthetic_video.py "
               f"--out {DEMO_SAMPLE_VIDEO} --size 64 --expressions happy,sad,angry,surprise,fear`.")


def get_args_parser():
    p = argparse.ArgumentParser(prog="app.py", description="S2D emotion timeline web page")
    p.add_argument("--port", default=7860, type=int)
    p.add_argument("--host", default="127.0.0.1", help="address to serve on (0.0.0.0: every network interface)")
    p.add_argument("--checkpoint", default=None,
                   help=f"fine-tuned checkpoint to run by default (default: the demo's, {DEMO_CHECKPOINT}); the "
                        "page also offers the demo's and every *.pth under ckpts/")
    p.add_argument("--sample_video", default=DEMO_SAMPLE_VIDEO,
                   help=f"a video the page offers to analyse, when the file exists (default: the demo's, "
                        f"{DEMO_SAMPLE_VIDEO})")
    p.add_argument("--landmark_weights", default=DEFAULT_LANDMARK_WEIGHTS,
                   help="MobileFaceNet weights, or 'random' (a checkpoint trained with the random network, as the "
                        "demo model, always runs with it)")
    p.add_argument("--data_set", default=None, choices=sorted(DATASETS) + sorted(ALIASES),
                   help="the class names and window policy for checkpoints that store no data set name (the "
                        "authors' files store theirs)")
    p.add_argument("--device", default=None, help="cuda or cpu (default: cuda when available)")
    p.add_argument("--backend", default="auto", choices=BACKENDS,
                   help="what runs the model (default auto: the fastest path installed and verified here; predict.py)")
    p.add_argument("--precision", default="auto", choices=PRECISIONS, help="auto, fp32, bf16 or int8 (predict.py)")
    p.add_argument("--max_upload_mb", default=200, type=int, help="largest upload, in megabytes")
    p.add_argument("--max_video_seconds", default=600, type=float, help="longest video analysed")
    p.add_argument("--keep_analyses", default=5, type=int,
                   help="the page keeps the outputs and uploads of this many latest analyses (older ones are deleted)")
    p.add_argument("--keep_hours", default=24.0, type=float,
                   help="uploads and analyses older than this are deleted")
    return p


def main(argv=None):
    parser = get_args_parser()
    args = parser.parse_args(argv)
    if not 0 < args.port < 65536 or min(args.max_upload_mb, args.max_video_seconds, args.keep_analyses,
                                         args.keep_hours) <= 0:
        parser.error("--port must be in 1..65535; --max_upload_mb, --max_video_seconds, --keep_analyses and "
                     "--keep_hours positive")
    if args.checkpoint and not os.path.isfile(args.checkpoint):
        parser.error(f"--checkpoint {args.checkpoint}: no such file")
    if not args.checkpoint and not os.path.isfile(DEMO_CHECKPOINT):
        parser.error(f"no model to run: run `bash scripts/demo.sh` (it trains the demo model {DEMO_CHECKPOINT}) "
                     "or pass --checkpoint")
    models = find_models([path for path in (args.checkpoint, DEMO_CHECKPOINT) if path and os.path.isfile(path)],
                         "ckpts")
    workdir = tempfile.mkdtemp(prefix="s2d-app-")
    atexit.register(shutil.rmtree, workdir, ignore_errors=True)
    analyses = VideoAnalyses(models, workdir, args.landmark_weights, args.device, args.data_set,
                             args.max_video_seconds, args.keep_analyses, args.keep_hours, upload_dir=workdir,
                             backend=args.backend, precision=args.precision)
    try:
        analyses.analyzer(models[0].label)  # a checkpoint that cannot be loaded stops the app here
    except AnalysisError as error:
        print(f"error: {error}", file=sys.stderr)
        return exit_code(error)
    # read when gradio is imported: uploads go to the work folder, whose analyses gradio then serves without
    # copying them, and nothing is reported to gradio's servers
    os.environ["GRADIO_TEMP_DIR"] = workdir
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
    from webapp.page import build_page

    sample = args.sample_video if os.path.isfile(args.sample_video) else None
    live = LiveSessions(analyses.analyzer)
    page = build_page(analyses, live, models[0].label, sample, MAKE_SAMPLE, args.keep_hours)
    with stop_on_signals():  # Ctrl-C or SIGTERM (a service manager): an analysis under way stops between frames
        try:
            page.launch(server_name=args.host, server_port=args.port, max_file_size=f"{args.max_upload_mb}mb",
                        allowed_paths=[os.path.abspath(sample)] if sample else None, prevent_thread_lock=True)
        except OSError:
            print(f"error: cannot serve on {args.host}:{args.port} (the port is in use, or the address is not one "
                  "of this machine's): choose another --port or --host", file=sys.stderr)
            return 2
        wait_for_stop()
        page.close()
        live.stop_all()
        analyses.wait_idle()  # no analysis thread may outlive the app: at exit it could be inside C++ code
    print("stopped: the work folder is removed", file=sys.stderr)
    return EXIT_STOPPED


if __name__ == "__main__":
    sys.exit(main())

"""Write a synthetic face video for predict.py: a few expressions in a row, with their onsets.

Each expression is one clip of the synthetic data generator (`datasets.synthetic.render_clip`: a
drawn face, neutral at first, whose expression develops from a random point in the first half of
the clip to its apex), so the video shows one drawn face per expression. The segments and their
first frames and times are printed and written to a JSON file beside the video (VIDEO.json).

    python scripts/make_synthetic_video.py --out output/demo/synthetic.mp4 --expressions happy,sad,angry,surprise
"""
import argparse
import sys
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run as a file: import datasets.*, inference.*
from datasets.classes import DFEW_CLASSES
from datasets.synthetic import FRAMES_PER_EXPRESSION, VIDEO_FPS, draw_identity, render_clip
from utils.files import atomic_output, write_json_atomically

PERSON_SEED_STREAM = 2  # keeps a person's random draws apart from the expressions' ([seed, k])


def write_video(path, expressions, frames_per_expression, size, fps, seed, person=None):
    """Render the video and its JSON description; returns the description. With `person` (an int), every
    expression is shown by that one drawn person (face, colours, pose and background), else each by another."""
    identity = None if person is None else draw_identity(np.random.default_rng([person, PERSON_SEED_STREAM]), size)
    segments = []
    with atomic_output(path) as tmp_path:
        writer = cv2.VideoWriter(tmp_path, cv2.VideoWriter_fourcc(*"mp4v"), fps, (size, size))
        if not writer.isOpened():
            raise OSError(f"OpenCV cannot write an mp4 video to {tmp_path}")
        try:
            for k, name in enumerate(expressions):
                frames = render_clip(DFEW_CLASSES.index(name), frames_per_expression, size,
                                     np.random.default_rng([seed, k]), identity)
                for frame in frames:
                    writer.write(cv2.cvtColor(np.asarray(frame), cv2.COLOR_RGB2BGR))
                first = k * frames_per_expression
                segments.append(dict(expression=name, first_frame=first, last_frame=first + frames_per_expression - 1,
                                     start_s=round(first / fps, 4),
                                     end_s=round((first + frames_per_expression) / fps, 4)))
        finally:
            writer.release()
    description = dict(video=str(path), fps=fps, size=size, frames_per_expression=frames_per_expression,
                       seed=seed, person=person, segments=segments,
                       note="each segment starts neutral; its expression develops from a random frame "
                            "in the segment's first half")
    write_json_atomically(f"{path}.json", description)
    return description


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=Path("output/synthetic_video.mp4"))
    parser.add_argument("--expressions", default="happy,sad,angry,surprise",
                        help=f"comma-separated, from {', '.join(DFEW_CLASSES)}")
    parser.add_argument("--frames_per_expression", type=int, default=FRAMES_PER_EXPRESSION,
                        help="default: as the synthetic training clips present one expression (datasets/synthetic.py)")
    parser.add_argument("--size", type=int, default=112, help="frame width and height in pixels")
    parser.add_argument("--fps", type=float, default=VIDEO_FPS)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--person", type=int, default=None,
                        help="every expression shown by this one drawn person (default: a new face for each)")
    args = parser.parse_args(argv)
    expressions = [e.strip() for e in args.expressions.split(",") if e.strip()]
    unknown = [e for e in expressions if e not in DFEW_CLASSES]
    if not expressions or unknown:
        parser.error(f"--expressions {args.expressions!r}: expected names from {', '.join(DFEW_CLASSES)}")
    if args.frames_per_expression < 2 or args.size < 16 or args.fps <= 0:
        parser.error("--frames_per_expression must be >= 2, --size >= 16 and --fps > 0")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    description = write_video(args.out, expressions, args.frames_per_expression, args.size, args.fps, args.seed,
                              args.person)
    print(f"wrote {args.out} ({len(expressions) * args.frames_per_expression} frames, {args.fps:g} fps) "
          f"and {args.out}.json; expression onsets:")
    for s in description["segments"]:
        print(f"  {s['expression']:>8}: frames {s['first_frame']}-{s['last_frame']}, "
              f"{s['start_s']:.2f}-{s['end_s']:.2f} s")


if __name__ == "__main__":
    main()

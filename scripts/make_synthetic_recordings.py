"""Raw labelled recordings of drawn people, as a user of one's own data has them (scripts/demo_own_data.sh):
each person in several videos showing expressions one after another, and a labels CSV naming each
expression's segment with the user's own class names: `video,start_s,end_s,label,person`.

    python scripts/make_synthetic_recordings.py --out data/own_demo --people 3 --recordings 10

Each segment is one expression of `scripts/make_synthetic_video.py` (neutral at first, then developing), the
same drawn person (face, colours, background) throughout a person's videos. Idempotent: the same command
again reuses what is there.
"""
import argparse
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run as a file: import the project's packages
from scripts.make_synthetic_video import write_video
from utils.files import write_csv_atomically, write_json_atomically

# the user's class names, and the drawn expression (datasets.classes.DFEW_CLASSES) each stands for
CLASSES = {"joy": "happy", "sorrow": "sad", "anger": "angry", "astonishment": "surprise"}
PARAMETERS_FILE = "recordings.json"


def write_recordings(out, people, recordings, repeats, frames_per_expression, size, fps, seed):
    """Write out/videos/P<n>_<k>.mp4 and out/labels.csv; returns the labels CSV's path."""
    out = Path(out)
    parameters = dict(people=people, recordings=recordings, repeats=repeats,
                      frames_per_expression=frames_per_expression, size=size, fps=fps, seed=seed, classes=CLASSES)
    labels = out / "labels.csv"
    if labels.is_file() and (out / PARAMETERS_FILE).is_file() and \
            json.loads((out / PARAMETERS_FILE).read_text()) == parameters:
        return labels
    rows = []
    for person in range(1, people + 1):
        for k in range(1, recordings + 1):
            rng = np.random.default_rng([seed, person, k])
            names = list(rng.permutation(np.repeat(list(CLASSES), repeats)))
            video = out / "videos" / f"P{person}_{k:02d}.mp4"
            video.parent.mkdir(parents=True, exist_ok=True)
            description = write_video(video, [CLASSES[n] for n in names], frames_per_expression, size, fps,
                                      seed=int(rng.integers(2**31)), person=person)
            rows += [(f"videos/{video.name}", s["start_s"], s["end_s"], name, f"P{person}")
                     for name, s in zip(names, description["segments"])]
    write_csv_atomically(labels, ("video", "start_s", "end_s", "label", "person"), rows)
    write_json_atomically(out / PARAMETERS_FILE, parameters)
    return labels


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=Path("data/own_demo"))
    parser.add_argument("--people", type=int, default=3)
    parser.add_argument("--recordings", type=int, default=10, help="videos per person")
    parser.add_argument("--repeats", type=int, default=2, help="times each class is shown in a video")
    parser.add_argument("--frames_per_expression", type=int, default=16)
    parser.add_argument("--size", type=int, default=64, help="frame width and height in pixels")
    parser.add_argument("--fps", type=float, default=8.0)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    if min(args.people, args.recordings, args.repeats) < 1 or args.frames_per_expression < 2 or args.size < 16:
        parser.error("--people, --recordings and --repeats must be positive, --frames_per_expression >= 2, "
                     "--size >= 16")
    labels = write_recordings(args.out, args.people, args.recordings, args.repeats, args.frames_per_expression,
                              args.size, args.fps, args.seed)
    clips = args.people * args.recordings * args.repeats * len(CLASSES)
    print(f"{args.people * args.recordings} videos of {args.people} people in {args.out / 'videos'}, {clips} labelled "
          f"segments in {labels} (classes {', '.join(CLASSES)})")


if __name__ == "__main__":
    main()

"""The compact summary of a benchmarks/gpu_check.sh run, from the JSON files it left in its output folder (each
part's own printing is in its .log); parts that did not finish are named, the ratios come from the rows saved.

    python benchmarks/gpu_check_summary.py OUT
"""
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))  # run as a file: import the benchmark scripts
from benchmark_epoch import summary_line  # noqa: E402
from benchmark_gpu import TABLE_HEADER, largest_batch_line, ratio_lines, row_line, views_line  # noqa: E402
from profile_s2d import table  # noqa: E402


def summary(out: Path):
    """Lines of the summary."""
    lines = []

    def read(name):
        path = out / f"{name}.json"
        if not path.is_file():
            lines.append(f"{name}: no result (see {name}.log)")
            return None
        return json.loads(path.read_text())

    profile = read("profile")
    if profile:
        lines.append("profile: " + json.dumps(profile["setting"]))
        for result in profile["results"]:
            lines += table(result, cuda=profile["setting"]["device"] != "cpu")
    bench = read("benchmark")
    if bench:
        lines += ["benchmark: " + json.dumps(bench["setting"]), TABLE_HEADER, *map(row_line, bench["rows"])]
        lines += ratio_lines(bench["rows"])
        lines += [largest_batch_line(name, r) for name, r in bench["largest_train_batch"].items()]
    epoch = read("epoch")
    if epoch:
        lines.append(summary_line(epoch))
    test_pass = read("test_pass")
    if test_pass and test_pass["test_pass"]:
        lines.append(views_line(test_pass["test_pass"]))
    predict = read("predict")
    if predict:
        lines += [f"predict.py, {r['model']} on {r['device']}, {r['size']} video: {r['video_frames_per_second']} "
                  f"video frames/s ({r['frames']} frames, {r['seconds']} s)" for r in predict]
    return lines


if __name__ == "__main__":
    print("\n".join(summary(Path(sys.argv[1]))))

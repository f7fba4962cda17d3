"""Paper-style table of a dataset's runs: per-fold UAR/WAR of the last and the best model, and the mean.

    python scripts/summarize.py saved/model/finetuning/dfew [--pattern 'split0*']

Each run folder holds the log.txt written by main_finetune.py; its last line has the final results.
"""
import argparse
import json
import sys
from pathlib import Path

COLUMNS = [("last", "final_last_uar", "final_last_war"), ("best", "final_best_uar", "final_best_war")]


def read_final(run_dir: Path):
    """The final-results entry of a run's log.txt, or None while the run has not finished."""
    log = run_dir / "log.txt"
    for number, line in reversed(list(enumerate(log.read_text().splitlines(), start=1))):
        try:
            entry = json.loads(line)
        except json.JSONDecodeError as error:
            raise SystemExit(f"{log}:{number}: not a JSON line ({error})") from None
        if "final_last_uar" in entry:
            return entry
    return None


def summarize(root: Path, pattern: str = "*") -> str:
    runs = sorted(p.parent for p in root.glob(f"{pattern}/log.txt"))
    if not runs:
        raise SystemExit(f"no run folders with a log.txt match {root}/{pattern}")
    rows, unfinished = [], []
    for run in runs:
        final = read_final(run)
        if final is None:
            unfinished.append(run.name)
        else:
            rows.append((run.name, [(final[uar], final[war]) for _, uar, war in COLUMNS]))
    lines = ["| run | " + " | ".join(f"{tag} UAR / WAR" for tag, *_ in COLUMNS) + " |",
             "|---|" + "---|" * len(COLUMNS)]
    for name, values in rows:
        lines.append(f"| {name} | " + " | ".join(f"{u:.2f} / {w:.2f}" for u, w in values) + " |")
    if rows:
        means = [(sum(v[i][0] for _, v in rows) / len(rows), sum(v[i][1] for _, v in rows) / len(rows))
                 for i in range(len(COLUMNS))]
        lines.append(f"| mean of {len(rows)} | " + " | ".join(f"{u:.2f} / {w:.2f}" for u, w in means) + " |")
    if unfinished:
        lines.append("")
        lines.append("not finished: " + ", ".join(unfinished))
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("root", type=Path, help="folder holding one sub-folder per run (fold)")
    parser.add_argument("--pattern", default="*", help="glob of the run folders to include")
    args = parser.parse_args(argv)
    print(summarize(args.root, args.pattern))


if __name__ == "__main__":
    sys.exit(main())

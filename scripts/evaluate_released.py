"""Evaluate the authors' released fine-tuned checkpoints with the published protocol, and print the paper's table
beside the measured one. `EVAL=1 bash run.sh` (every data set) and `EVAL=1 bash scripts/ft_<data set>.sh` call it
with their recipe's data paths and settings.

    python scripts/evaluate_released.py --data_set DFEW --data_path DIR --test_label 1=FILE ... --output_root OUT

Per fold: the checkpoint under --ckpts_dir (ckpts/), else the one of the Hugging Face repository cyinen/S2D through
its cache (downloaded when absent; offline with HF_HUB_OFFLINE=1), found by models/released.py's rule; then
`torchrun --nproc_per_node N main_finetune.py --eval --dist_eval` with 2 segments x 2 crops. A fold whose log.txt
holds its result is skipped. Then OUT/published_vs_measured[_oversampled].md and .csv, from every fold evaluated
under OUT. Before anything runs, one message names every missing input; --check_only stops there.
"""
import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run as a file: import the project's packages
from engine.published import COLUMNS, DATA_SETS, comparison_rows, folds, markdown_table  # noqa: E402
from models.released import REPO, local_files, released_candidates, released_file, repo_files  # noqa: E402
from utils.files import write_csv_atomically, write_text_atomically  # noqa: E402

NUM_CLASSES = {"DFEW": 7, "FERV39K": 7, "MAFW": 11}


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data_set", required=True, choices=DATA_SETS)
    p.add_argument("--data_path", required=True, help="the data set's frame folder")
    p.add_argument("--test_label", action="append", default=[], metavar="FOLD=FILE",
                   help="a fold's test annotation file (FOLD 'all' for FERV39K's one split); repeatable")
    p.add_argument("--output_root", required=True, help="one folder per fold, and the tables")
    p.add_argument("--oversample", action="store_true", help="the w/ oversampling column's checkpoints")
    p.add_argument("--check_only", action="store_true", help="name every missing input, then exit")
    p.add_argument("--ckpts_dir", default="ckpts", help="released checkpoints found here are used as they are")
    p.add_argument("--landmark_weights", default="ckpts/mobilefacenet_model_best.pth.tar")
    p.add_argument("--nproc", default=1, type=int, help="processes (GPUs) of torchrun")
    p.add_argument("--batch_size", default=8, type=int, help="clips per process and step")
    p.add_argument("--model", default="s2d_base_patch16_224")
    p.add_argument("--input_size", default=224, type=int)
    p.add_argument("--num_frames", default=16, type=int)
    p.add_argument("--sampling_rate", default=1, type=int)
    p.add_argument("--num_workers", default=8, type=int)
    args = p.parse_args(argv)
    try:
        args.labels = {None if fold == "all" else int(fold): path
                       for fold, path in (item.split("=", 1) for item in args.test_label)}
    except ValueError:
        p.error(f"--test_label takes FOLD=FILE (FOLD a number or 'all'), got {args.test_label}")
    if not args.labels or not set(args.labels) <= set(folds(args.data_set)):
        p.error(f"--test_label: {args.data_set}'s folds are {[f or 'all' for f in folds(args.data_set)]}")
    return args


def fold_dir(args, fold):
    name = "all" if fold is None else f"fold{fold}"
    return os.path.join(args.output_root, args.data_set.lower(), name + ("_oversampled" if args.oversample else ""))


def evaluated(folder):
    """(UAR, WAR) of the evaluation logged in `folder`, or None."""
    log = Path(folder, "log.txt")
    if not log.is_file():
        return None
    results = [json.loads(line) for line in log.read_text().splitlines() if '"final_uar"' in line]
    return (results[-1]["final_uar"], results[-1]["final_war"]) if results else None


def find_checkpoints(args):
    """({fold: (where, path)} of the folds to evaluate, [missing inputs], [notes]): `where` is 'local' (a path under
    ckpts_dir) or 'hub' (a path of the repository). With --oversample, a fold without such a checkpoint is a note."""
    found, missing, notes, hub = {}, [], [], None
    local = local_files(args.ckpts_dir)
    for fold in args.labels:
        name = f"{args.data_set}{'' if fold is None else f' fold {fold}'}"
        if len(released_candidates(local, args.data_set, fold, args.oversample)) == 1:
            found[fold] = ("local", released_file(local, args.data_set, fold, args.oversample))
            continue
        if hub is None:
            try:
                hub = repo_files(REPO)
            except Exception as error:  # offline and nothing cached, no network, ...
                hub = error
        if isinstance(hub, Exception):
            missing.append(f"checkpoint of {name}: none in {args.ckpts_dir}/, and the Hugging Face repository {REPO} "
                           f"cannot be listed ({type(hub).__name__}); see scripts/download_checkpoints.py")
        elif args.oversample and not released_candidates(hub, args.data_set, fold, True):
            notes.append(f"{name}: no w/ oversampling checkpoint is released (none in {args.ckpts_dir}/ or {REPO}); "
                         "not evaluated")
        else:
            try:
                found[fold] = ("hub", released_file(hub, args.data_set, fold, args.oversample, REPO))
            except ValueError as error:
                missing.append(f"checkpoint: {str(error).split('; pass')[0]}")
    return found, missing, notes


def missing_inputs(args):
    missing = [] if os.path.isdir(args.data_path) else [
        f"frame folder {args.data_path} (DATA_PATH): the data set's face frames, see docs/DATA.md"]
    missing += [f"annotation file {path} (LABEL_ROOT): docs/DATA.md, scripts/convert_*.py"
                for path in args.labels.values() if not os.path.isfile(path)]
    if args.landmark_weights != "random" and not os.path.isfile(args.landmark_weights):
        missing.append(f"MobileFaceNet weights {args.landmark_weights} (LANDMARK_WEIGHTS): "
                       "landmark/mobilefacenet_model_best.pth.tar of github.com/MSA-LMC/S2D, see ckpts/README.md")
    return missing


def fetch(args, where, path):
    if where == "local":
        return os.path.join(args.ckpts_dir, path)
    from huggingface_hub import hf_hub_download

    return hf_hub_download(REPO, path)


def evaluate_fold(args, fold, checkpoint):
    output_dir = fold_dir(args, fold)
    os.makedirs(output_dir, exist_ok=True)
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", str(args.nproc),
               "main_finetune.py", "--eval", "--finetune", checkpoint, "--model", args.model,
               "--data_set", args.data_set, "--nb_classes", str(NUM_CLASSES[args.data_set]),
               "--data_path", args.data_path, "--test_label_path", args.labels[fold],
               "--landmark_weights", args.landmark_weights, "--batch_size", str(args.batch_size),
               "--input_size", str(args.input_size), "--short_side_size", str(args.input_size),
               "--num_frames", str(args.num_frames), "--sampling_rate", str(args.sampling_rate),
               "--test_num_segment", "2", "--test_num_crop", "2", "--dist_eval",
               "--num_workers", str(args.num_workers), "--output_dir", output_dir]
    print(f"==> {args.data_set} {'' if fold is None else f'fold {fold} '}{checkpoint} -> {output_dir}", flush=True)
    with open(os.path.join(output_dir, "eval.log"), "a") as log:
        process = subprocess.Popen(command, cwd=Path(__file__).resolve().parents[1], stdout=subprocess.PIPE,
                                   stderr=subprocess.STDOUT, text=True)
        for line in process.stdout:
            sys.stdout.write(line)
            log.write(line)
    return process.wait()


def write_tables(output_root, oversampled):
    """The paper's table beside every fold measured under `output_root`, as markdown and CSV; returns the markdown."""
    suffix = "_oversampled" if oversampled else ""
    measured = {}
    for data_set in DATA_SETS:
        for fold in folds(data_set):
            name = ("all" if fold is None else f"fold{fold}") + suffix
            if (result := evaluated(os.path.join(output_root, data_set.lower(), name))) is not None:
                measured[(data_set, fold)] = result
    rows = comparison_rows(measured, oversampled)
    table = markdown_table(rows, oversampled)
    os.makedirs(output_root, exist_ok=True)
    write_text_atomically(os.path.join(output_root, f"published_vs_measured{suffix}.md"), table)
    write_csv_atomically(os.path.join(output_root, f"published_vs_measured{suffix}.csv"), COLUMNS, rows)
    return table


def main(argv=None):
    args = parse_args(argv)
    found, missing, notes = find_checkpoints(args)
    missing = missing_inputs(args) + missing
    if missing:
        print(f"error: the {args.data_set} evaluation cannot start; missing:", file=sys.stderr)
        print("".join(f"  - {m}\n" for m in missing), end="", file=sys.stderr)
        return 1
    for note in notes:
        print(f"note: {note}")
    if args.check_only:
        return 0
    for fold, (where, path) in found.items():
        if evaluated(fold_dir(args, fold)) is not None:
            print(f"done already: {fold_dir(args, fold)}")
            continue
        code = evaluate_fold(args, fold, fetch(args, where, path))
        if code != 0:
            print(f"error: the evaluation of {args.data_set} {'' if fold is None else f'fold {fold} '}failed "
                  f"(exit {code}); see {fold_dir(args, fold)}/eval.log", file=sys.stderr)
            return code
    print(write_tables(args.output_root, args.oversample))
    for note in notes:
        print(f"note: {note}")
    print(f"tables: {args.output_root}/published_vs_measured{'_oversampled' if args.oversample else ''}.md, .csv")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""The authors' released fine-tuned checkpoints (the Hugging Face repository cyinen/S2D): which file is which data
set's, fold's and sampling's, found by one rule for hubconf.py, scripts/download_checkpoints.py and the evaluation
of the published table (scripts/evaluate_released.py).

The repository's file names are not fixed here: a checkpoint file belongs to a data set when its path names the
data set, to a fold when its file name holds the fold's number, and to the "w/ oversampling" column when its path
says so (OVERSAMPLED_WORDS).
"""
import os
import re

REPO = "cyinen/S2D"
CHECKPOINT_EXTENSIONS = (".pth", ".pt", ".tar")
OVERSAMPLED_WORDS = re.compile(r"oversampl|(?<![a-z])bds(?![a-z])|balanced", re.IGNORECASE)


def repo_files(repo=REPO, revision=None, cache_dir=None):
    """The repository's file paths; offline (HF_HUB_OFFLINE=1), those of the cached snapshot."""
    from huggingface_hub import HfApi, constants, snapshot_download

    if constants.HF_HUB_OFFLINE:
        snapshot = snapshot_download(repo, revision=revision, cache_dir=cache_dir, local_files_only=True)
        return sorted(os.path.relpath(os.path.join(folder, name), snapshot)
                      for folder, _, names in os.walk(snapshot) for name in names)
    return sorted(HfApi().list_repo_files(repo, revision=revision))


def released_candidates(files, data_set, fold=None, oversampled=None):
    """The paths among `files` that are `data_set`'s checkpoint (of `fold`; of the w/ or w/o oversampling column
    when `oversampled` is True or False, of either when None)."""
    candidates = [f for f in files if f.lower().endswith(CHECKPOINT_EXTENSIONS) and data_set.lower() in f.lower()]
    if fold is not None:
        candidates = [f for f in candidates if re.search(rf"(?<!\d){fold}(?!\d)", os.path.basename(f))]
    if oversampled is not None:
        candidates = [f for f in candidates if bool(OVERSAMPLED_WORDS.search(f)) == oversampled]
    return candidates


def released_file(files, data_set, fold=None, oversampled=None, where="the repository"):
    """The one path of released_candidates; ValueError naming what was found when none or several are."""
    candidates = released_candidates(files, data_set, fold, oversampled)
    if len(candidates) != 1:
        found = "several: " + ", ".join(candidates) if candidates else "none"
        column = {True: " (w/ oversampling)", False: " (w/o oversampling)", None: ""}[oversampled]
        raise ValueError(f"{data_set}{'' if fold is None else f' fold {fold}'}{column}: expected one checkpoint in "
                         f"{where}, found {found}; pass filename= (its files: {', '.join(files) or '(none)'})")
    return candidates[0]


def local_files(folder):
    """Paths of the files under `folder`, relative to it (none when it does not exist)."""
    return sorted(os.path.relpath(os.path.join(parent, name), folder)
                  for parent, _, names in os.walk(folder) for name in names)

"""Fetch the authors' released S2D checkpoints from the Hugging Face repository cyinen/S2D into ckpts/.

    python scripts/download_checkpoints.py --list                       # what the repository holds
    python scripts/download_checkpoints.py --pattern '*DFEW*'           # matching files -> ckpts/
    python scripts/download_checkpoints.py --pattern 'pretrain*' --pattern '*MAFW*'

Files go through the Hugging Face cache (`--cache_dir`, default the usual ~/.cache/huggingface/hub,
or HF_HUB_CACHE), which resumes interrupted downloads and skips complete ones, and are then linked
(hard link; a copy across file systems) into `--dest` under their repository path. With
HF_HUB_OFFLINE=1 nothing is fetched: --list shows the cached files and the rest comes from the cache.
The torch.hub entry points (hubconf.py) fetch the same files on first use; nothing else downloads anything.
"""
import argparse
import fnmatch
import os
import shutil
import sys

from huggingface_hub import snapshot_download
from huggingface_hub.errors import HfHubHTTPError, LocalEntryNotFoundError

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # run as a file: import models.*
from models.released import REPO, repo_files  # noqa: E402


def link_or_copy(source, target):
    """Put `source` at `target` (hard link, else copy), atomically; an identical file is left alone."""
    if os.path.exists(target) and os.path.samefile(source, target):
        return "present"
    os.makedirs(os.path.dirname(target) or ".", exist_ok=True)
    tmp = f"{target}.{os.getpid()}.tmp"
    try:
        os.link(source, tmp)
    except OSError:
        shutil.copyfile(source, tmp)
    os.replace(tmp, target)
    return "written"


def download(repo, patterns, dest, revision=None, cache_dir=None):
    """Fetch the files matching any of `patterns` (fnmatch) into `dest`; returns {path: status}."""
    files = repo_files(repo, revision, cache_dir)
    wanted = [f for f in files if any(fnmatch.fnmatch(f, p) for p in patterns)]
    if not wanted:
        raise ValueError(f"no file of {repo} matches {patterns}; its files: {', '.join(files) or '(none)'}")
    snapshot = snapshot_download(repo, revision=revision, cache_dir=cache_dir, allow_patterns=wanted)
    return {f: link_or_copy(os.path.realpath(os.path.join(snapshot, f)), os.path.join(dest, f)) for f in wanted}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repo", default=REPO)
    parser.add_argument("--revision", default=None, help="branch, tag or commit (default: main)")
    parser.add_argument("--list", action="store_true", help="list the files (matching --pattern, if given)")
    parser.add_argument("--pattern", action="append", default=[], help="shell-style pattern; repeatable")
    parser.add_argument("--dest", default="ckpts")
    parser.add_argument("--cache_dir", default=None)
    args = parser.parse_args(argv)
    if not args.list and not args.pattern:
        parser.error("give --list, or --pattern PATTERN for the files to fetch ('*' for all)")
    try:
        if args.list:
            for name in repo_files(args.repo, args.revision, args.cache_dir):
                if not args.pattern or any(fnmatch.fnmatch(name, p) for p in args.pattern):
                    print(name)
            return
        for name, status in download(args.repo, args.pattern, args.dest, args.revision, args.cache_dir).items():
            print(f"{os.path.join(args.dest, name)} ({status})")
    except (ValueError, OSError, HfHubHTTPError, LocalEntryNotFoundError) as error:
        sys.exit(f"error: {error}")


if __name__ == "__main__":
    main()

"""Files and folders written atomically: readers see the old file or the whole new one, never a half-written
file; a folder of outputs appears complete or not at all."""
import contextlib
import csv
import json
import os
import shutil
import tempfile
from pathlib import Path


@contextlib.contextmanager
def atomic_output(path):
    """Yield a temporary path beside `path` (same extension) that is renamed over `path` on success and
    removed on failure."""
    folder, name = os.path.split(os.path.abspath(path))
    stem, extension = os.path.splitext(name)
    tmp_path = os.path.join(folder, f".{stem}.{os.getpid()}.tmp{extension}")
    try:
        yield tmp_path
        os.replace(tmp_path, path)
    finally:
        if os.path.exists(tmp_path):
            os.unlink(tmp_path)


def write_csv_atomically(path, header, rows):
    """`header` then `rows` (sequences, or dicts keyed by the header's names) written with the csv module
    (fields holding commas or quotes are quoted); the parent folder is created."""
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    with atomic_output(path) as tmp_path, open(tmp_path, "w", newline="") as handle:
        rows = list(rows)
        if rows and isinstance(rows[0], dict):
            writer = csv.DictWriter(handle, header, lineterminator="\n")
            writer.writeheader()
        else:
            writer = csv.writer(handle, lineterminator="\n")
            writer.writerow(header)
        writer.writerows(rows)


def write_json_atomically(path, content, **dump_options):
    """`content` as indented JSON, newline-terminated."""
    with atomic_output(path) as tmp_path, open(tmp_path, "w") as handle:
        json.dump(content, handle, indent=2, **dump_options)
        handle.write("\n")


def write_text_atomically(path, text):
    with atomic_output(path) as tmp_path, open(tmp_path, "w") as handle:
        handle.write(text)


@contextlib.contextmanager
def staged_folder(folder, known_outputs=()):
    """Yield a staging folder beside `folder` (.<name>.partial-XXXX) that replaces `folder` on success and is
    removed on failure or interrupt. When `folder` exists its files are replaced one by one, and those of
    `known_outputs` that this run did not write (left by an earlier run) are removed."""
    folder = os.path.abspath(folder)
    os.makedirs(os.path.dirname(folder), exist_ok=True)
    staging = tempfile.mkdtemp(prefix=f".{os.path.basename(folder)}.partial-", dir=os.path.dirname(folder))
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(staging, 0o777 & ~umask)  # mkdtemp's folder is private; the outputs get the usual permissions
    try:
        yield staging
        _commit(staging, folder, known_outputs)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise


def _commit(staging, folder, known_outputs):
    try:
        os.rename(staging, folder)
    except OSError:
        written = os.listdir(staging)
        for name in set(known_outputs) - set(written):
            if os.path.exists(os.path.join(folder, name)):
                os.remove(os.path.join(folder, name))
        for name in written:
            os.replace(os.path.join(staging, name), os.path.join(folder, name))
        os.rmdir(staging)


def remove_staged_folders(parent, name="*"):
    """Remove the staging folders of `name` (a glob pattern) that a killed run left in `parent`."""
    for stale in Path(parent).glob(f".{name}.partial-*"):
        shutil.rmtree(stale, ignore_errors=True)


def record_settings(path, settings, overwrite):
    """Write `settings` to the JSON file `path` unless a run recorded them before (and not `overwrite`)."""
    if overwrite or not os.path.exists(path):
        write_json_atomically(path, settings, sort_keys=True)


def changed_settings(path, settings):
    """The names whose value in `settings` differs from the record in `path` (a rerun must use the same)."""
    recorded = json.loads(Path(path).read_text())
    return sorted(k for k in set(recorded) | set(settings) if recorded.get(k) != settings.get(k))

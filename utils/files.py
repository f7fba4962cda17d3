"""Files written atomically: readers see the old file or the whole new one, never a half-written file."""
import contextlib
import csv
import json
import os
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

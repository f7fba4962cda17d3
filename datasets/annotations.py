"""Reading and validating a clip annotation CSV (header row, then `clip path,label` rows).

Accepts the files of the original S2D repository as they are (`video_name,label`, `path,id`,
`video_name,labels`) and the usual variants of such files: a UTF-8 BOM, CRLF line ends, blank
lines, spaces around fields, a trailing comma, and a leading index column written by pandas.
"""
import csv
import os
import warnings
from dataclasses import dataclass

import numpy as np

MAX_LISTED_PROBLEMS = 20
PANDAS_INDEX_NAMES = ("", "Unnamed: 0")


@dataclass(frozen=True)
class Clip:
    clip_id: str  # the path exactly as written in the CSV, relative to the data root
    label: int
    folder: str
    frame_names: np.ndarray  # file names in frame order; a numpy array keeps forked workers from copying it
    csv_path: str = ""
    line: int = 0  # line of the CSV row


@dataclass(frozen=True)
class BadRow:
    line: int
    clip_id: str
    reason: str


def _is_int(text: str) -> bool:
    try:
        int(text)
    except ValueError:
        return False
    return True


def _frame_names(folder: str, extensions: tuple[str, ...]) -> list[str]:
    """File-name order; numeric order when every name is a number (1.jpg ... 10.jpg; zero-padded names such as
    the official 00001.jpg sort the same either way)."""
    names = sorted(entry.name for entry in os.scandir(folder)
                   if entry.is_file() and os.path.splitext(entry.name)[1].lower() in extensions)
    stems = [os.path.splitext(name)[0] for name in names]
    if all(stem.isascii() and stem.isdigit() for stem in stems):
        return [name for _, name in sorted(zip(map(int, stems), names))]
    return names


def _check_row(row: list[str], data_path: str, nb_classes: int, extensions: tuple[str, ...],
               seen: set[str], csv_path: str, line: int, images: bool) -> tuple[str | None, Clip | None]:
    """(reason the row is bad, None) or (None, the clip; with `images`, a one-frame clip)."""
    if len(row) != 2:
        return f"expected 2 columns (clip path, label), got {len(row)}: {row!r}", None
    clip_id, label_text = row
    if not clip_id or os.path.isabs(clip_id):
        return f"clip path {clip_id!r} must be a non-empty path relative to the data root", None
    if not _is_int(label_text):
        return f"label {label_text!r} of clip {clip_id!r} is not an integer", None
    label = int(label_text)
    if not 0 <= label < nb_classes:
        return f"label {label} of clip {clip_id!r} is outside [0, {nb_classes})", None
    if clip_id in seen:
        return f"clip {clip_id!r} appears more than once", None
    seen.add(clip_id)
    if images:
        path = os.path.join(data_path, clip_id)
        if not os.path.isfile(path):
            return f"image file {path!r} does not exist", None
        if os.path.splitext(path)[1].lower() not in extensions:
            return f"image file {path!r} does not have an extension {'/'.join(extensions)}", None
        return None, Clip(clip_id, label, os.path.dirname(path), np.array([os.path.basename(path)]))
    folder = os.path.join(data_path, clip_id)
    if not os.path.isdir(folder):
        return f"clip folder {folder!r} does not exist", None
    names = _frame_names(folder, extensions)
    if not names:
        return f"clip folder {folder!r} holds no frame with extension {'/'.join(extensions)}", None
    return None, Clip(clip_id, label, folder, np.array(names), csv_path, line)


def csv_rows(csv_path: str) -> list[tuple[int, list[str]]]:
    """(line number, stripped fields) of every non-blank row, trailing empty fields removed."""
    with open(csv_path, newline="", encoding="utf-8-sig") as f:
        reader = csv.reader(f)
        rows = []
        for fields in reader:
            fields = [field.strip() for field in fields]
            while fields and not fields[-1]:
                fields.pop()
            if fields:
                rows.append((reader.line_num, fields))
    return rows


def scan_annotations(csv_path: str, data_path: str, nb_classes: int, extensions: tuple[str, ...],
                     images: bool = False) -> tuple[list[str], list[Clip], list[BadRow]]:
    """(header, valid clips, bad rows) of `csv_path`; a file that is not an annotation CSV raises ValueError.
    With `images` the rows name image files, each read as a one-frame clip."""
    if not os.path.isfile(csv_path):
        raise ValueError(f"annotation file {csv_path!r} does not exist")
    rows = csv_rows(csv_path)
    if not rows:
        raise ValueError(f"annotation file {csv_path!r} is empty; expected a header row and clip rows")
    header_line, header = rows[0]
    has_index_column = len(header) == 3 and header[0] in PANDAS_INDEX_NAMES
    if has_index_column:
        header = header[1:]
    if len(header) != 2:
        raise ValueError(f"{csv_path}:{header_line}: expected a header row with 2 column names "
                         f"(e.g. 'video_name,label'), got {header!r}")
    if _is_int(header[1]):
        raise ValueError(f"{csv_path}:{header_line}: header row is missing: first row {header!r} has an "
                         "integer label; expected column names such as 'video_name,label'")
    if len(rows) == 1:
        raise ValueError(f"annotation file {csv_path!r} has a header but no clip rows")
    bad_rows, clips, seen = [], [], set()
    for line, row in rows[1:]:
        if has_index_column and len(row) == 3:
            row = row[1:]
        reason, clip = _check_row(row, data_path, nb_classes, extensions, seen, csv_path, line, images)
        if reason is None:
            clips.append(clip)
        else:
            bad_rows.append(BadRow(line, row[0] if row else "", reason))
    return header, clips, bad_rows


def read_annotations(csv_path: str, data_path: str, nb_classes: int, extensions: tuple[str, ...],
                     skip_bad_clips: bool = False, images: bool = False) -> tuple[list[Clip], list[BadRow]]:
    """(clips, dropped rows) of `csv_path`, validated against `data_path` (`images`: see scan_annotations).

    All offending rows are collected; they raise one ValueError, or with `skip_bad_clips` are
    dropped with one summary warning.
    """
    _, clips, bad_rows = scan_annotations(csv_path, data_path, nb_classes, extensions, images)
    if bad_rows:
        problems = [f"{csv_path}:{row.line}: {row.reason}" for row in bad_rows]
        listed = "\n  ".join(problems[:MAX_LISTED_PROBLEMS])
        summary = f"{len(problems)} bad row(s) in {csv_path!r} (data root {data_path!r})"
        if not skip_bad_clips:
            raise ValueError(f"{summary}; first {min(len(problems), MAX_LISTED_PROBLEMS)}:\n  {listed}\n"
                             "fix the file or pass --skip_bad_clips to drop them")
        warnings.warn(f"skipping {summary}; first few:\n  " + "\n  ".join(problems[:5]))
        if not clips:
            raise ValueError(f"every row of {csv_path!r} is bad; nothing left to load")
    return clips, bad_rows

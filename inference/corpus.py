"""Many videos with one Analyzer: a share of the corpus per process (torchrun), resumable, one failure never
stopping the rest, and OUT/index.csv (one row per finished video) written atomically as videos finish.

Each video's outputs go to OUT/<name>, a name derived from the video's absolute path (its file name and a
hash of the path: stable across runs, unique for equal file names in different folders). A folder appears
only once complete (Analyzer.analyze commits it with one rename), so a rerun skips exactly the videos that
were finished; OUT/corpus.json records the settings, and a rerun with other settings is refused.

Under torchrun the processes share nothing but the output folder (no process group, no collective): each
prepares and checks what concerns its own share, records its rows in OUT/.corpus-rank<k>.json and, under a
file lock, merges every process's file into index.csv after each video (per video the newest row). No process
waits for another, so a process that dies (killed, out of host memory) leaves the others' work and the index
intact. A video whose process died while analysing it (its marker OUT/.running-<name> is still there) is tried
again after the others on the next run.
"""
import contextlib
import fcntl
import hashlib
import json
import os
import shutil
import socket
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from utils.files import (
    changed_settings,
    record_settings,
    remove_staged_folders,
    write_csv_atomically,
    write_json_atomically,
)
from utils.progress import format_duration
from utils.stop import stop_point

from .decode import probe_video
from .pipeline import AnalysisError, InvalidSettings
from .summary import AnalysisSummary

VIDEO_EXTENSIONS = (".mp4", ".mov", ".m4v", ".avi", ".mkv", ".webm", ".mpg", ".mpeg", ".wmv", ".flv", ".ts",
                    ".mts", ".3gp")
LIST_EXTENSIONS = (".txt", ".lst", ".list")
INDEX_COLUMNS = ("video", "output", "status", "frames", "duration_s", "tracks", "seconds", "error")


def collect_videos(paths) -> list[str]:
    """Absolute paths of the videos named by `paths`: video files, folders (searched recursively for
    VIDEO_EXTENSIONS, in sorted order) and text files listing one video per line (blank lines and # comments
    skipped; relative paths are relative to the list file). Each video once, in the order given."""
    videos = []
    for path in map(Path, paths):
        if path.is_dir():
            videos += sorted(str(p) for p in path.rglob("*") if p.suffix.lower() in VIDEO_EXTENSIONS and p.is_file())
        elif path.suffix.lower() in LIST_EXTENSIONS and path.is_file():
            for number, line in enumerate(path.read_text().splitlines(), start=1):
                line = line.strip()
                if line and not line.startswith("#"):
                    listed = path.parent / line
                    if not listed.is_file():
                        raise InvalidSettings(f"{path}:{number}: no such video file: {line}")
                    videos.append(str(listed))
        elif path.is_file():
            videos.append(str(path))
        else:
            raise InvalidSettings(f"--videos: no such file or folder: {path}")
    unique = list(dict.fromkeys(os.path.abspath(v) for v in videos))
    if not unique:
        raise InvalidSettings(f"--videos {' '.join(map(str, paths))}: no video found (extensions: "
                              f"{' '.join(VIDEO_EXTENSIONS)})")
    return unique


def output_name(video: str) -> str:
    digest = hashlib.sha1(os.path.abspath(video).encode()).hexdigest()[:10]
    return f"{Path(video).name.replace('.', '_')}-{digest}"


def shares(videos, world_size) -> list[list[int]]:
    """Indices of `videos` per process, balanced by file size (largest first to the least loaded process,
    ties to the lower rank): the same on every process."""
    loads, assigned = [0] * world_size, [[] for _ in range(world_size)]
    sizes = [os.path.getsize(v) if os.path.isfile(v) else 0 for v in videos]
    for index in sorted(range(len(videos)), key=lambda i: (-sizes[i], i)):
        rank = min(range(world_size), key=lambda r: (loads[r], r))
        loads[rank] += sizes[index]
        assigned[rank].append(index)
    return [sorted(a) for a in assigned]


def write_index(path, rows):
    write_csv_atomically(path, INDEX_COLUMNS, rows)


def failure_reason(error: BaseException) -> str:
    """One line naming the exception's type (for a project error, the type of what caused it) and its message."""
    cause = error.__cause__ if isinstance(error, AnalysisError) and error.__cause__ is not None else error
    message = " ".join(str(error).split()) or repr(error)
    return f"{type(cause).__name__}: {message}"


def _row(video, name, summary=None, seconds=None, error=""):
    if summary is None:
        return dict(video=video, output=name, status="failed", frames="", duration_s="", tracks="",
                    seconds=f"{seconds:.3f}", error=error)
    return dict(video=video, output=name, status="ok" if summary.complete else "partial",
                frames=summary.frames_decoded, duration_s=summary.duration_s, tracks=len(summary.tracks),
                seconds=summary.seconds, error=summary.warning or "" if not summary.complete else "")


def _prepare(output_dir, settings, overwrite, names):
    """Record the settings (the first run, or --overwrite) or check them (a rerun must use the same); clear the
    staging folders that a killed run left for the videos `names` (this process's share); returns those of
    `names` whose process died while analysing them (their markers)."""
    os.makedirs(output_dir, exist_ok=True)
    path = os.path.join(output_dir, "corpus.json")
    record_settings(path, settings, overwrite)  # every process writes the same
    if changed := changed_settings(path, settings):
        raise InvalidSettings(f"{output_dir} holds a corpus analysed with other settings ({', '.join(changed)} "
                              "differ; see its corpus.json): pass --overwrite to redo it, or another --output_dir")
    for name in names:
        remove_staged_folders(output_dir, name)
    return {name for name in names if os.path.exists(os.path.join(output_dir, f".running-{name}"))}


@dataclass
class CorpusResult:
    rows: list  # index rows of the videos finished so far by every process, in the order of the videos
    mine: list  # the rows of this process's share


@contextlib.contextmanager
def _index_lock(output_dir):
    """An exclusive lock on OUT/.index.lock (flock; NFS emulates it with POSIX locks): one merge at a time."""
    with open(os.path.join(output_dir, ".index.lock"), "a") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX)
        except OSError:  # a file system without locks: merges may race, the rank files stay right
            pass
        yield


def _merge(output_dir, rank, videos, rows):
    """Record this process's rows, then rewrite index.csv from every process's file (per video its newest row,
    so that rows of an earlier run give way); returns the merged rows."""
    with _index_lock(output_dir):
        write_json_atomically(os.path.join(output_dir, f".corpus-rank{rank}.json"),
                              {videos[i]: [finished, row] for i, (finished, row) in rows.items()})
        newest = {}
        for path in Path(output_dir).glob(".corpus-rank*.json"):
            for video, (finished, row) in json.loads(path.read_text()).items():
                if finished > newest.get(video, (-1, None))[0]:
                    newest[video] = (finished, row)
        merged = [newest[v][1] for v in videos if v in newest]
        write_index(os.path.join(output_dir, "index.csv"), merged)
    return merged


def analyze_corpus(analyzer, videos, output_dir, overwrite=False, stream=None, rank=0, world_size=1) -> CorpusResult:
    """Analyse process `rank`'s share of `videos` into `output_dir`. Any exception while analysing a video makes
    it `failed` (a one-line reason naming the exception's type) and the corpus goes on; only a stop (utils.stop's
    Stopped, or KeyboardInterrupt) and SystemExit end it."""
    stream = stream or sys.stderr
    mine = shares(videos, world_size)[rank]
    died = _prepare(output_dir, analyzer.settings_record(), overwrite, [output_name(videos[i]) for i in mine])
    retried = [i for i in mine if output_name(videos[i]) in died]
    mine = [i for i in mine if i not in retried] + retried
    frame_counts = {i: _frame_count(videos[i]) for i in mine}
    frames_total = sum(frame_counts.values())
    rows, frames_done, start, worked = {}, 0, time.time(), 0.0
    for index in retried:
        rows[index] = (time.time(), _row(videos[index], output_name(videos[index]), seconds=0.0,
                                         error="the process analysing it died in an earlier run (killed, or out of "
                                               "memory)"))
    merged = None
    print(f"[rank {rank}] {len(mine)} of {len(videos)} videos, {frames_total} frames"
          + (f"; {len(retried)} whose process died earlier come last" if retried else ""), file=stream)
    for done, index in enumerate(mine, start=1):
        stop_point()
        video, name = videos[index], output_name(videos[index])
        folder = os.path.join(output_dir, name)
        summary_path = os.path.join(folder, "summary.json")
        if os.path.exists(summary_path) and not overwrite:
            summary = AnalysisSummary.read(summary_path)
            rows[index], note = (time.time(), _row(video, name, summary)), "done before, skipped"
        else:
            began = time.time()
            with _running(output_dir, name):
                try:
                    if os.path.exists(folder):
                        shutil.rmtree(folder)
                    summary = analyzer.analyze(video, folder).summary
                    rows[index], note = (time.time(), _row(video, name, summary)), _note(summary)
                except Exception as error:  # one video's failure, whatever it is, never stops the others
                    reason = failure_reason(error)
                    rows[index] = (time.time(), _row(video, name, seconds=time.time() - began, error=reason))
                    note = f"FAILED: {reason}"
            worked += time.time() - began
            frames_done += frame_counts[index]
        merged = _record(output_dir, rank, videos, rows, stream) or merged
        rate = frames_done / worked if worked else 0
        eta = format_duration((frames_total - frames_done) / rate) if rate else "unknown"
        print(f"[rank {rank}] video {done}/{len(mine)} {video}: {note}  ({frames_done}/{frames_total} frames, "
              f"{format_duration(time.time() - start)} elapsed, eta {eta})", file=stream, flush=True)
    mine_rows = [rows[i][1] for i in sorted(rows)]
    if world_size == 1 and merged is not None and len(merged) == len(videos):  # nothing left to merge
        for leftover in [*Path(output_dir).glob(".corpus-rank*.json"), Path(output_dir, ".index.lock")]:
            leftover.unlink(missing_ok=True)
    return CorpusResult(merged if merged is not None else mine_rows, mine_rows)


def _record(output_dir, rank, videos, rows, stream):
    """_merge, reporting a failure to write (a full disk) instead of stopping: the next video writes again."""
    try:
        return _merge(output_dir, rank, videos, rows)
    except OSError as error:
        print(f"[rank {rank}] warning: cannot write {output_dir}/index.csv now ({failure_reason(error)}); "
              "written again after the next video", file=stream, flush=True)
        return None


@contextlib.contextmanager
def _running(output_dir, name):
    """OUT/.running-<name> while the video is analysed: left behind only when the process dies."""
    marker = os.path.join(output_dir, f".running-{name}")
    try:
        Path(marker).write_text(f"{socket.gethostname()} pid {os.getpid()}\n")
    except OSError:  # a full disk: the analysis fails anyway, or goes on without the marker
        pass
    try:
        yield
    finally:
        Path(marker).unlink(missing_ok=True)


def _note(summary):
    return ("ok" if summary.complete else "partial: " + summary.warning) + \
        f", {len(summary.tracks)} track(s), {summary.seconds:.1f} s"


def _frame_count(video):
    """For the progress lines only: a video that cannot be probed fails in its analysis, with the reason."""
    try:
        return probe_video(video).frame_count
    except Exception:
        return 0

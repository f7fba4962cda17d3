"""Many videos with one Analyzer: a share of the corpus per process (torchrun), resumable, one failure never
stopping the rest, and OUT/index.csv (one row per video) written atomically as videos finish.

Each video's outputs go to OUT/<name>, a name derived from the video's absolute path (its file name and a
hash of the path: stable across runs, unique for equal file names in different folders). A folder appears
only once complete (Analyzer.analyze commits it with one rename), so a rerun skips exactly the videos that
were finished; OUT/corpus.json records the settings, and a rerun with other settings is refused.
"""
import hashlib
import json
import os
import shutil
import sys
import time
from pathlib import Path

from utils.distributed import all_gather_objects, barrier, get_rank, get_world_size
from utils.files import write_csv_atomically, write_json_atomically
from utils.progress import format_duration

from .decode import VideoError, probe_video
from .pipeline import EXIT_BAD_ARGUMENT, AnalysisError

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
                        raise AnalysisError(f"{path}:{number}: no such video file: {line}", EXIT_BAD_ARGUMENT)
                    videos.append(str(listed))
        elif path.is_file():
            videos.append(str(path))
        else:
            raise AnalysisError(f"--videos: no such file or folder: {path}", EXIT_BAD_ARGUMENT)
    unique = list(dict.fromkeys(os.path.abspath(v) for v in videos))
    if not unique:
        raise AnalysisError(f"--videos {' '.join(map(str, paths))}: no video found (extensions: "
                            f"{' '.join(VIDEO_EXTENSIONS)})", EXIT_BAD_ARGUMENT)
    return unique


def output_name(video: str) -> str:
    digest = hashlib.sha1(os.path.abspath(video).encode()).hexdigest()[:10]
    return f"{Path(video).name.replace('.', '_')}-{digest}"


def shares(videos, world_size) -> list[list[int]]:
    """Indices of `videos` per process, balanced by file size (largest first to the least loaded process,
    ties to the lower rank): the same on every process."""
    loads, assigned = [0] * world_size, [[] for _ in range(world_size)]
    sizes = [os.path.getsize(v) for v in videos]
    for index in sorted(range(len(videos)), key=lambda i: (-sizes[i], i)):
        rank = min(range(world_size), key=lambda r: (loads[r], r))
        loads[rank] += sizes[index]
        assigned[rank].append(index)
    return [sorted(a) for a in assigned]


def write_index(path, rows):
    write_csv_atomically(path, INDEX_COLUMNS, rows)


def _row(video, name, summary=None, seconds=None, error=""):
    if summary is None:
        return dict(video=video, output=name, status="failed", frames="", duration_s="", tracks="",
                    seconds=f"{seconds:.3f}", error=error)
    return dict(video=video, output=name, status="ok" if summary["complete"] else "partial",
                frames=summary["frames_decoded"], duration_s=summary["duration_s"], tracks=len(summary["tracks"]),
                seconds=summary["seconds"], error=summary.get("warning", "") if not summary["complete"] else "")


def _check_settings(output_dir, settings, overwrite):
    """The first run records its settings; a rerun must use the same (or --overwrite)."""
    path = os.path.join(output_dir, "corpus.json")
    if get_rank() == 0:
        os.makedirs(output_dir, exist_ok=True)
        for stale in Path(output_dir).glob(".*.partial-*"):  # staging folders of a killed run
            shutil.rmtree(stale, ignore_errors=True)
        if overwrite or not os.path.exists(path):
            write_json_atomically(path, settings, sort_keys=True)
    barrier()
    recorded = json.loads(Path(path).read_text())
    if recorded != settings:
        changed = sorted(k for k in set(recorded) | set(settings) if recorded.get(k) != settings.get(k))
        raise AnalysisError(f"{output_dir} holds a corpus analysed with other settings ({', '.join(changed)} "
                            "differ; see its corpus.json): pass --overwrite to redo it, or another --output_dir",
                            EXIT_BAD_ARGUMENT)


def analyze_corpus(analyzer, videos, output_dir, overwrite=False, stream=None):
    """Analyse this process's share of `videos` into `output_dir`; returns every process's index rows
    (on every process), in the order of `videos`. Rank 0 writes OUT/index.csv."""
    stream = stream or sys.stderr
    rank, world_size = get_rank(), get_world_size()
    _check_settings(output_dir, analyzer.settings_record(), overwrite)
    mine = shares(videos, world_size)[rank]
    frame_counts = {i: _frame_count(videos[i]) for i in mine}
    frames_total = sum(frame_counts.values())
    index_path = os.path.join(output_dir, "index.csv" if world_size == 1 else f".index-rank{rank}.csv")
    rows, frames_done, start, worked = {}, 0, time.time(), 0.0
    print(f"[rank {rank}] {len(mine)} of {len(videos)} videos, {frames_total} frames", file=stream)
    for done, index in enumerate(mine, start=1):
        video, name = videos[index], output_name(videos[index])
        folder = os.path.join(output_dir, name)
        summary_path = os.path.join(folder, "summary.json")
        if os.path.exists(summary_path) and not overwrite:
            summary = json.loads(Path(summary_path).read_text())
            rows[index], note = _row(video, name, summary), "done before, skipped"
        else:
            if os.path.exists(folder):
                shutil.rmtree(folder)
            began = time.time()
            try:
                summary = analyzer.analyze(video, folder).summary
                rows[index], note = _row(video, name, summary), _note(summary)
            except AnalysisError as error:
                rows[index], note = _row(video, name, seconds=time.time() - began, error=str(error)), f"FAILED: {error}"
            worked += time.time() - began
            frames_done += frame_counts[index]
        write_index(index_path, [rows[i] for i in sorted(rows)])
        rate = frames_done / worked if worked else 0
        eta = format_duration((frames_total - frames_done) / rate) if rate else "unknown"
        print(f"[rank {rank}] video {done}/{len(mine)} {video}: {note}  ({frames_done}/{frames_total} frames, "
              f"{format_duration(time.time() - start)} elapsed, eta {eta})", file=stream, flush=True)
    gathered = {i: row for part in all_gather_objects(rows) for i, row in part.items()}
    merged = [gathered[i] for i in sorted(gathered)]
    if rank == 0:
        write_index(os.path.join(output_dir, "index.csv"), merged)
    barrier()
    if world_size > 1:
        os.remove(index_path)
    return merged


def _note(summary):
    return ("ok" if summary["complete"] else "partial: " + summary["warning"]) + \
        f", {len(summary['tracks'])} track(s), {summary['seconds']:.1f} s"


def _frame_count(video):
    try:
        return probe_video(video).frame_count
    except VideoError:
        return 0

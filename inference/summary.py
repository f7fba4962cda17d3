"""What an analysis found in one video: summary.json, the corpus index's rows and the web page's status read it."""
import json
from dataclasses import asdict, dataclass
from pathlib import Path


@dataclass
class AnalysisSummary:
    video: str
    container: dict  # fps, frame_count, duration_s, width, height, rotation, codec, as the container says
    frames_decoded: int
    frames_detected: int
    duration_s: float  # the last decoded frame's time
    complete: bool  # False: the video broke off mid-stream (`warning` says where)
    repaired_timestamps: int
    seconds: float  # the analysis's wall-clock time
    video_frames_per_second: float
    windows: int
    tracks: list  # per confirmed track: inference.outputs.track_summaries
    dropped_short_tracks: int
    class_names: list
    model: dict  # the checkpoint and the model settings
    window_policy: dict
    detector: str
    margin: float
    options: dict  # inference.Options
    backend: dict  # what ran the model (backend, precision) and why
    annotated_video: dict | None = None  # its codec, when written
    out_of_memory: str | None = None  # the smaller batches the GPU's memory allowed
    repeated_frames: dict | None = None  # windows whose samples repeat frames, and why
    warning: str | None = None  # a video that broke off, or in which no face was found
    live: dict | None = None  # a live stream's figures: how it ended, frames skipped, windows dropped, latency

    def to_json(self) -> dict:
        """The summary.json content: the optional entries only when set."""
        return {k: v for k, v in asdict(self).items() if v is not None}

    @classmethod
    def read(cls, path) -> "AnalysisSummary":
        """The summary.json at `path`."""
        return cls(**json.loads(Path(path).read_text()))

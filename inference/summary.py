"""What an analysis found in one video: summary.json, the corpus index's rows and the web page's status read it."""
import json
from dataclasses import asdict, dataclass
from pathlib import Path

from .outputs import track_summaries


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

    @classmethod
    def of_analysis(cls, model, detector_name, options, policy, faces, writer, **fields) -> "AnalysisSummary":
        """The summary of an analysis by `model` (inference.model.VideoModel) with `options` and `policy`, in which
        `faces` (inference.segment.SegmentFaces) cut the windows that `writer` (inference.outputs.PredictionWriter)
        wrote; `fields`: what the video or stream adds."""
        spans = {track_id: faces.spans[serial] for serial, track_id in faces.serial_to_id.items()}
        return cls(frames_detected=faces.schedule.frames_detected, windows=writer.rows,
                   tracks=track_summaries(writer, spans, model.class_names),
                   dropped_short_tracks=faces.tracker.num_dropped, class_names=model.class_names,
                   model=dict(checkpoint=model.path, **vars(model.settings)),
                   window_policy=dict(asdict(policy), span_seconds=policy.span), detector=detector_name,
                   margin=faces.margin, options=asdict(options), backend=asdict(model.backend), **fields)

    def to_json(self) -> dict:
        """The summary.json content: the optional entries only when set."""
        return {k: v for k, v in asdict(self).items() if v is not None}

    @classmethod
    def read(cls, path) -> "AnalysisSummary":
        """The summary.json at `path`."""
        return cls(**json.loads(Path(path).read_text()))

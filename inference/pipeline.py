"""The video pipeline: time-stamped frames -> faces -> tracks -> windows -> batched model -> outputs.

    analyzer = Analyzer("checkpoint.pth", landmark_weights="ckpts/mobilefacenet_model_best.pth.tar")
    result = analyzer.analyze("interview.mp4", "out/interview")

Decoding, detection, tracking and cropping run in a worker thread that feeds windows to the model, so
the two overlap. Everything streams: a window's pixels are freed once classified, rows are written as
they come, and the annotated video is a second decoding pass, so memory does not grow with the video.
The outputs are written in a staging folder beside `output_dir` and moved into it when complete; an
error or an interrupt removes them (nothing half-written is left).
"""
import os
import queue
import sys
import threading
import time
from dataclasses import asdict, dataclass, replace

import numpy as np
import torch

from models.landmark import DEFAULT_LANDMARK_WEIGHTS
from utils.device import DeviceError, choose_device
from utils.files import staged_folder, write_json_atomically
from utils.progress import ProgressLogger
from utils.stop import stop_point

from .backends import BackendError, check_request, needs_cpu
from .decode import VideoError, VideoReader, probe_video
from .detection_schedule import DEFAULT_DETECT_INTERVAL, InterpolatedBoxes
from .detectors import build_detector
from .faces import DetectorError
from .live import LiveAnalysis, LiveSource, NewestFrame, SourceError
from .model import CheckpointError, VideoModel
from .outputs import (
    BOX_RECORD,
    FeatureWriter,
    PredictionWriter,
    annotate_video,
    read_box_records,
    video_codec,
    write_timeline,
)
from .segment import SegmentFaces
from .summary import AnalysisSummary
from .windows import window_policy

OUTPUT_FILES = ("predictions.csv", "summary.json", "timeline.png", "annotated.mp4", "features.npy")


class AnalysisError(Exception):
    """What stops an analysis, `reason`, and the `video` it concerns if any; the subclasses say what (predict.py
    maps each to its exit code)."""

    def __init__(self, reason, video=None):
        super().__init__(f"{video}: {reason}" if video else reason)
        self.reason, self.video = reason, video


class InvalidSettings(AnalysisError):
    """A setting out of range, or settings that contradict each other."""


class UnreadableVideo(AnalysisError):
    """A video that cannot be opened or decoded."""


class UnusableCheckpoint(AnalysisError):
    """A checkpoint or landmark weights that cannot be loaded, or that do not fit the settings."""


class DetectorUnavailable(AnalysisError):
    """The face detector cannot be built."""


class OutOfGPUMemory(AnalysisError):
    """Out of GPU memory on a single window."""


@dataclass
class Options:
    """Per-video settings (see predict.py --help for each)."""
    frame_stride: int = 1  # analyse every Nth decoded frame (--frame_stride, --every)
    max_seconds: float | None = None
    window_seconds: float | None = None
    source_fps: float | None = None
    stride_seconds: float | None = None
    smooth: int = 1
    margin: float | None = None  # default: inference.detectors.DEFAULT_MARGIN of the detector
    iou_threshold: float = 0.3
    max_gap_seconds: float = 2.0
    break_seconds: float = 0.5
    min_track_frames: int = 3
    detect_interval: float = DEFAULT_DETECT_INTERVAL
    batch_size: int = 8
    write_video: bool = True
    features: bool = False  # also write features.npy: each window's clip feature, a row per predictions.csv row
    print_freq: int = 100

    def check(self):
        for name in ("frame_stride", "smooth", "batch_size", "print_freq", "min_track_frames"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be a positive integer, got {getattr(self, name)}")
        for name in ("max_seconds", "window_seconds", "source_fps", "stride_seconds"):
            if getattr(self, name) is not None and not getattr(self, name) > 0:
                raise ValueError(f"{name} must be positive, got {getattr(self, name)}")
        if not 0 < self.iou_threshold <= 1 or self.max_gap_seconds < 0 or self.break_seconds < 0 or (
                self.margin is not None and self.margin < 0):
            raise ValueError("iou_threshold must be in (0, 1]; max_gap_seconds, break_seconds and margin >= 0")
        if self.detect_interval < 0 or 0 < min(self.break_seconds, self.max_gap_seconds) <= self.detect_interval:
            raise ValueError(f"detect_interval must be >= 0 and shorter than break_seconds and max_gap_seconds (a "
                             f"face would seem to leave between two detections), got {self.detect_interval}")


@dataclass
class Result:
    output_dir: str
    summary: AnalysisSummary

    @property
    def predictions_csv(self):
        return os.path.join(self.output_dir, "predictions.csv")

    @property
    def features_npy(self):
        return os.path.join(self.output_dir, "features.npy")


class Analyzer:
    """A model and a face detector, loaded once, to analyse any number of videos. `detector` None: the one whose
    crops the checkpoint's training clips were, as it stores it, else mtcnn."""

    def __init__(self, checkpoint, landmark_weights=DEFAULT_LANDMARK_WEIGHTS, device=None,
                 cpu_int8=False, trust_checkpoint=False, detector=None, detector_model="", min_face=40,
                 model=None, data_set=None, num_frames=None, input_size=None, short_side_size=None,
                 options=None, stream=None, speedups=True, backend="auto", precision="auto", backend_cache=None):
        try:
            device = choose_device(device, cpu_only=cpu_int8 or needs_cpu(backend, precision))
            check_request(backend, precision, torch.device(device))
        except (DeviceError, BackendError) as error:
            raise InvalidSettings(str(error)) from error
        self.options = options or Options()
        self._stream = stream  # progress and messages; None: sys.stderr at the time of writing
        try:
            self.options.check()
        except ValueError as error:
            raise InvalidSettings(str(error)) from error
        try:
            self.model = VideoModel(checkpoint, landmark_weights, device, cpu_int8, trust_checkpoint, speedups,
                                    backend, precision, backend_cache, lambda line: print(line, file=self.stream),
                                    model=model, data_set=data_set, num_frames=num_frames, input_size=input_size,
                                    short_side_size=short_side_size)
        except CheckpointError as error:
            raise UnusableCheckpoint(str(error)) from error
        except BackendError as error:
            raise InvalidSettings(str(error)) from error
        detector = detector or self.model.settings.clip_detector or "mtcnn"
        self.detector_name, self.landmark_weights, self.cpu_int8 = detector, self.model.landmark_weights, cpu_int8
        self.backend_request = dict(backend=backend, precision=precision)  # as asked; summary.json: what ran
        try:
            self.detector = build_detector(detector, detector_model, min_face, device)
        except DetectorError as error:
            raise DetectorUnavailable(str(error)) from error
        except ValueError as error:
            raise InvalidSettings(str(error)) from error

    @property
    def stream(self):
        return self._stream or sys.stderr

    def settings_record(self):
        """What determines the results (not the device): recorded by corpus runs."""
        return dict(checkpoint=os.path.abspath(self.model.path), landmark_weights=self.landmark_weights,
                    cpu_int8=self.cpu_int8, model=vars(self.model.settings), detector=self.detector_name,
                    options=asdict(self.options), backend=self.backend_request)

    def analyze(self, video, output_dir, progress=None, info=None, **overrides) -> Result:
        """Analyse one video into `output_dir` (`overrides`: Options fields for this video only). `progress`, if
        given, is called as progress(phase, done, total) after every processed frame of each phase ("frames",
        then "annotated video"; total 0 when the container does not say), from the decoding worker thread.
        `info`: the video's inference.decode.VideoInfo, when the caller has probed it."""
        options, policy = self._options_and_policy(overrides)
        try:
            info = info or probe_video(video)
        except VideoError as error:
            raise UnreadableVideo(error.reason, error.path) from error
        output_dir = os.path.abspath(output_dir)
        with staged_folder(output_dir, OUTPUT_FILES) as staging:
            summary = _VideoAnalysis(self, options, policy, info, staging, progress).run()
            stop_point()
        return Result(output_dir, summary)

    def live(self, source, output_dir=None, realtime=False, duration=None, save_video=False,
             **overrides) -> LiveAnalysis:
        """A live analysis of `source`, iterated for its inference.live.LiveReadings as each window is classified:
        a camera ("0", "/dev/video0"), a stream URL FFmpeg opens (rtsp://, rtmp://, http://, ...), a video file
        played at its own pace (`realtime`), or an inference.live.NewestFrame the caller puts frames into.
        `output_dir` (optional) gets predictions.csv row by row, then summary.json and timeline.png when the
        stream ends, and recording.mp4 with `save_video`; `duration`: seconds of source time to analyse.
        `overrides`: Options fields for this stream only."""
        options, policy = self._options_and_policy(overrides)
        if duration is not None and not duration > 0:
            raise InvalidSettings(f"duration must be positive, got {duration}")
        try:
            source = source if isinstance(source, NewestFrame) else LiveSource.parse(source, realtime)
            return LiveAnalysis(self, source, output_dir, options, policy, duration, save_video)
        except SourceError as error:
            raise UnreadableVideo(str(error)) from error

    def _options_and_policy(self, overrides):
        """The Options with `overrides`, checked, and the window policy they give with the model's settings."""
        options = replace(self.options, **overrides)
        try:
            options.check()
            return options, window_policy(self.model.settings.data_set, self.model.settings.num_frames,
                                          options.window_seconds, options.source_fps, options.stride_seconds,
                                          self.model.settings.clip_sampling)
        except ValueError as error:
            raise InvalidSettings(str(error)) from error


def analyze_video(video, checkpoint, output_dir, options=None, **analyzer_settings) -> Result:
    """One video: `options` an Options, `analyzer_settings` the other Analyzer arguments."""
    return Analyzer(checkpoint, options=options, **analyzer_settings).analyze(video, output_dir)


_DONE = object()


def _prefetch(iterable, depth, stop):
    """Run `iterable` in a worker thread, `depth` items ahead; re-raise its exception here. The worker is joined
    before this generator ends (it must not outlive the work: at exit it would be inside C++ code); `stop` tells it
    that no more items are wanted, and `iterable` should check it between its slow steps."""
    items = queue.Queue(maxsize=depth)

    def hand_over(item):
        while not stop.is_set():
            try:
                items.put(item, timeout=0.1)
                return True
            except queue.Full:
                pass
        return False

    def work():
        try:
            for item in iterable:
                if not hand_over(item):
                    return
            hand_over(_DONE)
        except BaseException as error:  # handed to the consumer
            hand_over(error)

    worker = threading.Thread(target=work, daemon=True, name="decode-detect")
    worker.start()
    try:
        while (item := items.get()) is not _DONE:
            if isinstance(item, BaseException):
                raise item
            yield item
            stop_point()
    finally:
        stop.set()
        worker.join()


class _VideoAnalysis:
    """One video's analysis (the state of the frame loop and of the outputs)."""

    def __init__(self, analyzer, options, policy, info, staging, progress):
        self.analyzer, self.options, self.policy, self.info, self.staging = analyzer, options, policy, info, staging
        self.progress = progress
        self.settings, self.class_names = analyzer.model.settings, analyzer.model.class_names
        self.reader = VideoReader(info, options.frame_stride, options.max_seconds)
        self.faces = SegmentFaces.with_options(self._frames(), analyzer.detector, analyzer.detector_name, options,
                                               policy, self.settings.short_side_size)
        self.fitting_batch, self.repeating_windows = options.batch_size, 0
        self.abandoned = threading.Event()  # set when the frame loop's consumer has gone (an error, a stop)

    def run(self):
        out, options, info = self.staging, self.options, self.info
        stream, model_backend = self.analyzer.stream, self.analyzer.model.backend
        print(f"{info.path}: {info.width}x{info.height}, {info.fps:.3f} fps nominal, {info.frame_count or '?'} "
              f"frames; {self.settings.model}, windows of {self.policy.num_frames} crops "
              f"{self.policy.sample_step:.3f} s apart every {self.policy.stride:.2f} s ({self.policy.source}); "
              f"classes {self.class_names}; model on {model_backend.describe()}", file=stream)
        model = self.analyzer.model
        features = FeatureWriter(os.path.join(out, "features.npy"), model.feature_dim) if options.features else None
        writer = PredictionWriter(os.path.join(out, "predictions.csv"), self.class_names, options.smooth, features)
        start = time.time()
        try:
            with open(os.path.join(out, "boxes.bin"), "wb") as boxes:
                for batch in _prefetch(self._window_batches(boxes), 2, self.abandoned):
                    for window, p, feature in zip(batch, *self._classify([w.crops for w in batch])):
                        window.feature = feature
                        writer.add(window, p)
                        self.repeating_windows += window.repeated > 0
        finally:
            writer.close()
        elapsed = time.time() - start
        reader = self.reader
        duration = reader.last_time or 0.0
        summary = AnalysisSummary.of_analysis(
            self.analyzer.model, self.analyzer.detector_name, options, self.policy, self.faces, writer,
            video=info.path,
            container=dict(fps=info.fps, frame_count=info.frame_count, duration_s=round(info.duration, 4),
                           width=info.width, height=info.height, rotation=info.rotation, codec=info.codec),
            frames_decoded=reader.frames_decoded, duration_s=round(duration, 4),
            complete=not reader.ended_early, repaired_timestamps=reader.repaired_timestamps,
            seconds=round(elapsed, 3), video_frames_per_second=round(reader.frames_decoded / max(elapsed, 1e-9), 3))
        if options.write_video:
            summary.annotated_video = dict(codec=video_codec(), frame_times="as decoded")
        if self.fitting_batch < options.batch_size:
            summary.out_of_memory = (f"batches of {options.batch_size} windows ran out of GPU memory; the video ran "
                                     f"in batches of {self.fitting_batch}")
        if self.repeating_windows:
            summary.repeated_frames = dict(windows=self.repeating_windows, why=self._why_frames_repeat())
            print(f"note: {self.repeating_windows} of {writer.rows} windows repeat frames: "
                  f"{summary.repeated_frames['why']}", file=stream)
        if reader.ended_early:
            summary.warning = (f"the video stopped decoding at {duration:.2f} s (frame {reader.frames_decoded}), "
                               f"{reader.ended_early}: truncated or damaged; results cover the part before")
        elif not self.faces.serial_to_id:
            summary.warning = f"no face found in {info.path}"
        if summary.warning is not None:
            print(f"warning: {summary.warning}", file=stream)
        write_json_atomically(os.path.join(out, "summary.json"), summary.to_json())
        title = f"{os.path.basename(info.path)} ({self.settings.model})"
        labels = write_timeline(out, self.class_names, duration, title)
        if options.write_video:
            self._annotated_video(labels)
        os.remove(os.path.join(out, "boxes.bin"))
        print(f"{len(self.faces.serial_to_id)} track(s), {writer.rows} windows; {reader.frames_decoded} frames "
              f"({self.faces.schedule.frames_detected} detected) in {elapsed:.1f} s "
              f"({summary.video_frames_per_second:.1f} frames/s)", file=stream)
        return summary

    def _classify(self, clips):
        """The model's probabilities and features of `clips`. When the GPU runs out of memory the batch is retried in
        halves, down to one window (said once); the size that fits is kept for the rest of the video. Out of memory
        on one window is an AnalysisError."""
        parts, first = [], 0
        while first < len(clips):
            size = min(self.fitting_batch, len(clips) - first)
            try:
                parts.append(self.analyzer.model.classify_and_embed(clips[first:first + size]))
                first += size
            except torch.OutOfMemoryError as error:
                if size == 1:
                    raise OutOfGPUMemory(f"out of GPU memory on a single window ({self.analyzer.model.device}): "
                                         "free the GPU for this process, or run on the CPU (--device cpu)",
                                         self.info.path) from error
                if self.fitting_batch == self.options.batch_size:
                    print(f"warning: out of GPU memory on a batch of {size} windows: retrying in smaller batches "
                          "(a smaller --batch_size avoids the retries)", file=self.analyzer.stream)
                self.fitting_batch = size // 2
                torch.cuda.empty_cache()
        return tuple(np.concatenate(outputs) for outputs in zip(*parts))

    def _why_frames_repeat(self):
        analysed = -(-self.reader.frames_decoded // self.options.frame_stride) / max(self.reader.last_time or 0.0, 1e-9)
        stride = f" with --frame_stride {self.options.frame_stride}" if self.options.frame_stride > 1 else ""
        step = self.policy.sample_step
        return (f"the window grid takes a sample every {step:.3f} s ({1 / step:.1f} per second), more often than the "
                f"frames analysed{stride} (about {analysed:.1f} per second), so neighbouring samples take the same "
                "frame: the model sees fewer distinct frames than its training clips had")

    def _frames(self):
        """The decoded frames, with progress."""
        progress = ProgressLogger("Frames:", self.options.print_freq, unit="frames", stream=self.analyzer.stream)
        total = -(-self.info.frame_count // self.options.frame_stride) if self.info.frame_count else 0
        yield from progress.log_every(self._reported(self.reader, "frames", total), total)

    def _window_batches(self, boxes):
        """Decode, detect, track and cut windows; yield lists of `batch_size` confirmed windows."""
        batch_size, queue_ = self.options.batch_size, []
        interpolated = InterpolatedBoxes()
        for step in self.faces:
            if self.abandoned.is_set():
                return
            if step.frame is not None and step.observations is None:
                interpolated.skip(step.frame)
                continue
            if step.frame is not None and (records := interpolated.records(step.frame, step.observations)):
                np.array(records, BOX_RECORD).tofile(boxes)
            queue_ += step.windows
            while len(queue_) >= batch_size:
                yield queue_[:batch_size]
                del queue_[:batch_size]
        for first in range(0, len(queue_), batch_size):
            yield queue_[first:first + batch_size]

    def _reported(self, frames, phase, total):
        """`frames`, calling the progress callback after each."""
        for done, frame in enumerate(frames, start=1):
            yield frame
            if self.progress is not None:
                self.progress(phase, done, total)

    def _annotated_video(self, labels):
        info = self.info
        frames = VideoReader(info, 1, self.options.max_seconds)
        progress = ProgressLogger("Annotated video:", self.options.print_freq * self.options.frame_stride,
                                  unit="frames", stream=self.analyzer.stream)
        total = self.reader.frames_decoded
        annotate_video(os.path.join(self.staging, "annotated.mp4"),
                       progress.log_every(self._reported(frames, "annotated video", total), total),
                       read_box_records(os.path.join(self.staging, "boxes.bin")), self.faces.serial_to_id, labels,
                       self.class_names, (info.width, info.height), self.options.frame_stride, info.fps or None)

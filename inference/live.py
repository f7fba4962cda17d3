"""Live analysis: a camera, a network stream, a file played at its own pace or frames pushed by a caller (the web
page's camera) -> faces -> tracks -> the newest window of each track -> the model, yielding a reading per window.

    for reading in analyzer.live("0", "out/live"):  # camera 0; or "rtsp://...", or ("clip.mp4", realtime=True)
        print(reading.track, reading.top_class, reading.latency_s)

Latency stays bounded when the model is slower than the source (docs/PREDICT.md, "Live analysis"):
- the source is read at its own pace in a thread of its own, which hands over only its newest frame: when face
  tracking falls behind, the frames it had no time for are skipped (counted), never queued;
- face detection, tracking and cropping run in a second thread, on the detection schedule of a file's analysis;
- each track keeps one pending window, its newest: a window cut while an older one of its track still waits
  replaces it (the older one is counted as dropped). Whenever the model is free it classifies the pending
  windows, one per track, in one batch. So a reading comes at most two model calls (plus the face tracking of a
  frame) after its window's last frame was captured, and no backlog builds up.

predictions.csv gets a row per reading, flushed as it comes; summary.json and timeline.png are written when the
stream ends (the source ended or broke off, --duration was reached, a stop was requested) and cover what was seen.
"""
import collections
import math
import os
import threading
import time
from dataclasses import asdict, dataclass

import cv2
import numpy as np

from utils.files import write_json_atomically
from utils.stop import requested as stop_requested
from utils.stop import stop_point

from .decode import Frame, VideoError, VideoReader, probe_video
from .outputs import (
    FeatureWriter,
    PredictionWriter,
    VideoEncoder,
    draw_face,
    write_timeline,
)
from .segment import SegmentFaces
from .summary import AnalysisSummary

NETWORK_SCHEMES = ("rtsp", "rtsps", "rtmp", "rtmps", "http", "https", "udp", "tcp", "srt", "rtp")
LIVE_OUTPUT_FILES = ("predictions.csv", "summary.json", "timeline.png", "recording.mp4", "features.npy")
CAPTURE_TIMES_KEPT = 4096  # frames whose capture time is remembered (a window's last frame is far more recent)
SOURCE_JOIN_SECONDS = 5.0
WAIT = 0.05  # seconds between two looks at a stop request while waiting for frames or windows


class SourceError(ValueError):
    """A live source that cannot be opened or is not one; the message names it and says what is expected."""


@dataclass(frozen=True)
class LiveSource:
    """What to read: a camera (its index or device path), a network address FFmpeg opens, or a file played at the
    pace of its timestamps."""
    kind: str  # "camera", "network" or "file"
    address: str | int

    @classmethod
    def parse(cls, text: str, realtime: bool = False) -> "LiveSource":
        text = str(text)
        if text.isdigit():
            return cls("camera", int(text))
        if text.startswith("/dev/video"):
            return cls("camera", text)
        if "://" in text:
            scheme = text.split("://", 1)[0].lower()
            if scheme not in NETWORK_SCHEMES:
                raise SourceError(f"{text}: unknown stream protocol {scheme!r}; expected one of "
                                  f"{', '.join(NETWORK_SCHEMES)}")
            return cls("network", text)
        if os.path.isfile(text):
            if not realtime:
                raise SourceError(f"{text}: a file streams live only when played at its own pace (--realtime); "
                                  "for a window every stride of a file, analyse it with --video")
            return cls("file", text)
        raise SourceError(f"{text}: not a camera (an index such as 0, or /dev/videoN), a stream URL "
                          f"({', '.join(NETWORK_SCHEMES)}) or an existing video file")

    def __str__(self):
        return f"camera {self.address}" if self.kind == "camera" else str(self.address)


class NewestFrame:
    """The hand-over from a source to face tracking: only the newest frame waits; a frame put while an earlier one
    still waits replaces it (`skipped` counts those). Iterating yields the frames as they are taken, until the
    source is closed and nothing waits, or `abandon` is set. Frames are numbered in the order they are put unless
    the producer numbers them (a file's own frame indices). `idle_timeout`: seconds without a new frame after
    which the source counts as ended (a camera or a page that stopped sending)."""

    def __init__(self, idle_timeout=None):
        self.abandon, self.idle_timeout = threading.Event(), idle_timeout
        self.last_put = time.monotonic()
        self.condition = threading.Condition()
        self.waiting = None
        self.closed_because = None  # why the source ended, once it has
        self.received = self.skipped = 0
        self.first_time = None
        self.captured = collections.OrderedDict()  # frame index -> time.monotonic() when it was put
        self.size = None  # (width, height) of the first frame

    def put(self, image, time_s=None, index=None):
        """Hand over a BGR frame taken at `time_s` seconds (None: the wall clock since the first frame)."""
        now = time.monotonic()
        with self.condition:
            if self.first_time is None:
                self.first_time, self.size = now, (image.shape[1], image.shape[0])
            index = self.received if index is None else index
            self.skipped += self.waiting is not None
            self.waiting = Frame(index, now - self.first_time if time_s is None else time_s, image)
            self.received, self.last_put = self.received + 1, now
            self.captured[index] = now
            if len(self.captured) > CAPTURE_TIMES_KEPT:
                self.captured.popitem(last=False)
            self.condition.notify_all()

    def close(self, because):
        with self.condition:
            if self.closed_because is None:
                self.closed_because = because
            self.condition.notify_all()

    def capture_time(self, index):
        return self.captured.get(index)

    def __iter__(self):
        while not self.abandon.is_set():
            with self.condition:
                if self.waiting is None and self.closed_because is None:
                    self.condition.wait(WAIT)
                    if self.idle_timeout is not None and time.monotonic() - self.last_put > self.idle_timeout:
                        self.closed_because = f"no frame came for {self.idle_timeout:g} s"
                frame, self.waiting = self.waiting, None
                if frame is None and self.closed_because is not None:
                    return
            if frame is not None:
                yield frame


def _paced(frames, abandon):
    """`frames` released at the pace of their timestamps (a file played as a camera would show it)."""
    start = first = None
    for frame in frames:
        if start is None:
            start, first = time.monotonic(), frame.time
        while (delay := start + frame.time - first - time.monotonic()) > 0:
            if abandon.wait(min(delay, WAIT)) or stop_requested():
                return
        yield frame


def _captured(capture, source, frame_stride, abandon):
    """The frames of an opened OpenCV capture, timed by the stream's own timestamps when they advance, else (a
    camera) left to the hand-over's wall clock."""
    index, previous = 0, -math.inf
    while not abandon.is_set() and not stop_requested():
        if index % frame_stride:
            if not capture.grab():
                return
            index += 1
            continue
        ok, image = capture.read()
        if not ok or image is None:
            return
        stamp = capture.get(cv2.CAP_PROP_POS_MSEC) / 1000 if source.kind == "network" else math.nan
        if math.isfinite(stamp) and stamp > previous:
            previous = stamp
        else:
            stamp = None
        yield Frame(index, stamp, image)
        index += 1


class SourceReader:
    """Reads a LiveSource in a thread of its own into a NewestFrame; `ended` says how reading ended."""

    def __init__(self, source: LiveSource, frames: NewestFrame, frame_stride=1):
        self.source, self.frames, self.frame_stride = source, frames, frame_stride
        self.ended, self.complete = "", True
        if source.kind == "file":
            try:
                self.reader = VideoReader(probe_video(source.address), frame_stride)
            except VideoError as error:
                raise SourceError(str(error)) from error
            self.capture = None
        else:
            self.capture = cv2.VideoCapture(source.address, cv2.CAP_FFMPEG if source.kind == "network" else
                                            cv2.CAP_ANY)
            if not self.capture.isOpened():
                self.capture.release()
                raise SourceError(f"{source}: cannot be opened (no such camera, the camera is in use, or the stream "
                                  "is unreachable or not a video stream)")
        self.thread = threading.Thread(target=self._read, daemon=True, name="live-source")

    def start(self):
        self.thread.start()
        return self

    def join(self):
        """Wait for the reading thread; a camera or stream whose read blocks (unplugged, a silent server) is left to
        its daemon thread after SOURCE_JOIN_SECONDS, so that the outputs are written all the same."""
        self.thread.join(SOURCE_JOIN_SECONDS)

    def _read(self):
        abandon = self.frames.abandon
        try:
            if self.capture is not None:
                frames = _captured(self.capture, self.source, self.frame_stride, abandon)
            else:
                frames = _paced(self.reader, abandon)
            for frame in frames:
                self.frames.put(frame.image, frame.time, frame.index if self.capture is None else None)
            if self.capture is None and self.reader.ended_early:
                self.ended, self.complete = f"the file stopped decoding {self.reader.ended_early}", False
            elif abandon.is_set() or stop_requested():
                self.ended = "stopped"
            elif self.source.kind == "file":
                self.ended = "the file ended"
            else:
                self.ended, self.complete = "the source ended or broke off", False
        except KeyboardInterrupt:  # the file reader's stop point
            self.ended = "stopped"
        except Exception as error:  # a source that breaks: the readings so far stand
            self.ended, self.complete = f"the source broke off: {error}", False
        finally:
            if self.capture is not None:
                self.capture.release()
            self.frames.close(self.ended)


class NewestWindows:
    """The windows waiting for the model: the newest of each track. `dropped` counts, per track, the windows
    replaced before the model took them, since that track's previous reading."""

    def __init__(self):
        self.condition = threading.Condition()
        self.waiting = {}  # track id -> (window, capture time of its last frame)
        self.dropped = collections.Counter()
        self.total_dropped = self.total_offered = 0
        self.finished = False

    def offer(self, window, captured):
        with self.condition:
            if window.track_id in self.waiting:
                self.dropped[window.track_id] += 1
                self.total_dropped += 1
            self.waiting[window.track_id] = (window, captured)
            self.total_offered += 1
            self.condition.notify_all()

    def finish(self):
        with self.condition:
            self.finished = True
            self.condition.notify_all()

    def take(self, limit):
        """Up to `limit` waiting windows, oldest first, with their capture times and drop counts; waits for one;
        [] once finished and none waits."""
        while True:
            stop_point()
            with self.condition:
                if not self.waiting and not self.finished:
                    self.condition.wait(WAIT)
                if self.waiting:
                    tracks = sorted(self.waiting, key=lambda t: self.waiting[t][0].end)[:limit]
                    return [(*self.waiting.pop(t), self.dropped.pop(t, 0)) for t in tracks]
                if self.finished:
                    return []


@dataclass
class LiveReading:
    """One window's reading, as it is classified."""
    track: int
    start_s: float  # the window's first and last sample times (the source's timestamps, else the wall clock)
    end_s: float
    probabilities: dict  # class name -> probability
    top_class: str
    latency_s: float  # from the capture of the window's last frame to this reading
    dropped: int  # windows of this track dropped (a newer one was ready) since its previous reading
    model_windows_per_s: float  # windows per second of model time, over the stream so far
    box: list  # (x, y, w, h) of the face in the window's middle sample
    feature: list | None = None  # with Options.features: the clip feature the head classifies

    def to_json(self) -> dict:
        return {k: v for k, v in asdict(self).items() if v is not None}


@dataclass
class LatencyRecord:
    """A live stream's running figures: its readings' latencies and the model's time."""
    readings: int = 0
    total: float = 0.0
    largest: float = 0.0
    last: float = 0.0
    model_seconds: float = 0.0
    model_windows: int = 0

    def add(self, latency):
        self.readings += 1
        self.total += latency
        self.largest, self.last = max(self.largest, latency), latency

    @property
    def pace(self) -> float:
        return self.model_windows / self.model_seconds if self.model_seconds else 0.0


class LiveAnalysis:
    """One live stream's analysis (Analyzer.live): the source and face-tracking threads, the model loop in the
    caller's thread, and the outputs. Iterating yields LiveReadings; closing the iteration early (a `break`, a
    stop) ends the stream cleanly and writes the outputs of what was seen."""

    def __init__(self, analyzer, source, output_dir, options, policy, duration=None, save_video=False):
        self.analyzer, self.options, self.policy, self.duration = analyzer, options, policy, duration
        self.output_dir = os.path.abspath(output_dir) if output_dir else None
        if isinstance(source, NewestFrame):
            self.frames, self.reader, self.source_name = source, None, "frames pushed by the caller"
        else:
            self.frames = NewestFrame()
            self.reader = SourceReader(source, self.frames, options.frame_stride)
            self.source_name = str(source)
        self.abandon = self.frames.abandon  # set when the stream ends: the source and the face tracking stop
        self.save_video = save_video and self.output_dir is not None
        self.settings, self.class_names = analyzer.model.settings, analyzer.model.class_names
        self.faces = SegmentFaces.with_options(self._frames_within_duration(), analyzer.detector,
                                               analyzer.detector_name, options, policy, self.settings.short_side_size)
        self.windows = NewestWindows()
        self.latency = LatencyRecord()
        self.latest = {}  # track id -> its latest reading's label, drawn on recording.mp4
        self.start_time = self.last_time = self.failure = None
        self.frames_tracked, self.duration_reached = 0, False

    def __iter__(self):
        stream, started = self.analyzer.stream, time.time()
        print(f"live: {self.source_name}; {self.settings.model}, windows of {self.policy.num_frames} crops "
              f"{self.policy.sample_step:.3f} s apart every {self.policy.stride:.2f} s ({self.policy.source}); "
              f"classes {self.class_names}; model on {self.analyzer.model.backend.describe()}", file=stream)
        writer = self._open_outputs()
        worker = threading.Thread(target=self._track_faces, daemon=True, name="live-faces")
        if self.reader is not None:
            self.reader.start()
        worker.start()
        try:
            while taken := self.windows.take(self.options.batch_size):
                yield from self._classify(taken, writer)
            if self.failure is not None:
                raise self.failure
        finally:
            self.abandon.set()
            worker.join()
            if self.reader is not None:
                self.reader.join()
            if writer is not None:
                writer.close()
                self._write_summary(writer, time.time() - started)

    def _classify(self, taken, writer):
        begin = time.monotonic()
        probabilities, features = self.analyzer.model.classify_and_embed([w.crops for w, _, _ in taken])
        now = time.monotonic()
        self.latency.model_seconds += now - begin
        self.latency.model_windows += len(taken)
        for (window, captured, dropped), p, feature in zip(taken, probabilities, features):
            window.feature = feature
            latency = now - captured
            self.latency.add(latency)
            top = int(np.argmax(p))
            self.latest[window.track_id] = f"#{window.track_id} {self.class_names[top]} {p[top]:.2f}"
            if writer is not None:
                writer.add(window, p)
            yield LiveReading(window.track_id, round(window.start, 4), round(window.end, 4),
                              {n: round(float(v), 6) for n, v in zip(self.class_names, p)}, self.class_names[top],
                              round(latency, 3), dropped, round(self.latency.pace, 3),
                              [round(float(v), 1) for v in window.box],
                              [float(v) for v in feature] if self.options.features else None)

    def _frames_within_duration(self):
        for frame in self.frames:
            self.start_time = frame.time if self.start_time is None else self.start_time
            if self.duration is not None and frame.time - self.start_time >= self.duration:
                self.duration_reached = True
                return
            self.last_time = frame.time
            self.frames_tracked += 1
            yield frame

    def _track_faces(self):
        """The face-tracking thread: every window cut goes to the model's waiting room."""
        recording = None
        try:
            for step in self.faces:
                for window in step.windows:
                    captured = self.frames.capture_time(int(window.frame_indices[-1]))
                    self.windows.offer(window, captured if captured is not None else time.monotonic())
                if self.save_video and step.frame is not None:
                    if recording is None:
                        recording = VideoEncoder(os.path.join(self.output_dir, "recording.mp4"), self.frames.size)
                    for observation in step.observations or ():
                        track_id = observation.track.track_id
                        if track_id is not None:
                            draw_face(step.frame.image, observation.box, track_id,
                                      self.latest.get(track_id, f"#{track_id}"))
                    recording.write(step.frame.image, step.frame.time)
        except BaseException as error:  # handed to the model loop, which raises it
            self.failure = error
        finally:
            self.abandon.set()  # the source's reader stops too (the duration was reached, or an error)
            if recording is not None:
                recording.close(flush=self.failure is None)
            self.windows.finish()

    def _open_outputs(self):
        if self.output_dir is None:
            return None
        os.makedirs(self.output_dir, exist_ok=True)
        for name in LIVE_OUTPUT_FILES:  # a new stream replaces the outputs of an earlier one
            if os.path.exists(path := os.path.join(self.output_dir, name)):
                os.remove(path)
        features = (FeatureWriter(os.path.join(self.output_dir, "features.npy"), self.analyzer.model.feature_dim)
                    if self.options.features else None)
        return PredictionWriter(os.path.join(self.output_dir, "predictions.csv"), self.class_names,
                                self.options.smooth, features)

    def ended(self):
        """Why the stream ended, and whether it covers the source up to then (False: it broke off)."""
        if self.duration_reached:
            return f"the duration ({self.duration:g} s) was reached", True
        if stop_requested():
            return "stopped", True
        if self.reader is not None:
            return self.reader.ended or "stopped", self.reader.complete
        return self.frames.closed_because or "stopped", True

    def _write_summary(self, writer, elapsed):
        out, latency = self.output_dir, self.latency
        ended, complete = self.ended()
        duration = self.last_time - self.start_time if self.last_time is not None else 0.0
        width, height = self.frames.size or (0, 0)
        summary = AnalysisSummary.of_analysis(
            self.analyzer.model, self.analyzer.detector_name, self.options, self.policy, self.faces, writer,
            video=self.source_name, container=dict(width=width, height=height, live=True),
            frames_decoded=self.frames.received, duration_s=round(duration, 4), complete=complete,
            repaired_timestamps=0, seconds=round(elapsed, 3),
            video_frames_per_second=round(self.frames_tracked / max(elapsed, 1e-9), 3),
            live=dict(source=self.source_name, ended=ended, frames_received=self.frames.received,
                      frames_skipped=self.frames.skipped, frames_tracked=self.frames_tracked,
                      windows_cut=self.windows.total_offered, windows_classified=latency.model_windows,
                      windows_dropped=self.windows.total_dropped,
                      latency_s=dict(mean=round(latency.total / max(latency.readings, 1), 3),
                                     max=round(latency.largest, 3), last=round(latency.last, 3)),
                      model_windows_per_s=round(latency.pace, 3)))
        if not complete:
            summary.warning = f"{ended}: the readings cover the {duration:.2f} s before"
        elif not self.faces.serial_to_id:
            summary.warning = f"no face found in {self.source_name}"
        write_json_atomically(os.path.join(out, "summary.json"), summary.to_json())
        write_timeline(out, self.class_names, max(duration, 0), f"{self.source_name} ({self.settings.model}, live)")
        figures = summary.live
        print(f"live ended ({ended}): {len(self.faces.serial_to_id)} track(s), {writer.rows} readings, "
              f"{figures['windows_dropped']} windows dropped; {figures['frames_received']} frames received "
              f"({figures['frames_skipped']} skipped) in {elapsed:.1f} s; latency mean {figures['latency_s']['mean']} "
              f"s, max {figures['latency_s']['max']} s; model {figures['model_windows_per_s']} windows/s",
              file=self.analyzer.stream)

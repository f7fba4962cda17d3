"""What the page runs: the models it offers, one Analyzer per checkpoint, the upload limits, an analysis
turned into what the page shows (status, timeline, per-track table, annotated video, downloads), and the
clean-up that bounds the disk the page uses."""
import contextlib
import contextvars
import glob
import os
import shutil
import tempfile
import threading
import time
from dataclasses import dataclass

from inference import AnalysisError, Analyzer, InvalidSettings, UnreadableVideo
from inference.decode import VideoError, probe_video
from utils.stop import Stopped

PROGRESS_EVERY = 25  # frames between updates of the page's progress bar
PHASES = {"frames": "analysing the video", "annotated video": "drawing the annotated video"}
FACES = {"none": "the whole frame is the face", "mtcnn": "faces found by MTCNN", "haar": "faces found by OpenCV's "
         "Haar cascade", "yunet": "faces found by YuNet"}  # of each detector (inference.DETECTORS)
NO_OUTPUTS = (None, None, None, None)  # timeline, table, video, downloads: cleared


@dataclass(frozen=True)
class KeptAnalysis:
    """An analysis folder the page still serves, and the upload it analysed."""
    folder: str
    upload: str
    created: float


@dataclass(frozen=True)
class Model:
    label: str
    checkpoint: str


def find_models(checkpoints, ckpts_dir):
    """The models offered: `checkpoints` (the default first), then every *.pth under `ckpts_dir`, each file once."""
    paths = [*checkpoints, *sorted(glob.glob(os.path.join(ckpts_dir, "**", "*.pth"), recursive=True))]
    models, seen = [], set()
    for path in paths:
        if (real := os.path.realpath(path)) not in seen:
            seen.add(real)
            models.append(Model(os.path.normpath(path), path))
    return models


def describe_model(label, analyzer):
    """The page's words on a loaded model: what runs, as its checkpoint says (faces, landmark network, windows), and
    the note its training data carries."""
    settings = analyzer.model.settings
    faces = FACES[analyzer.detector_name]
    landmarks = "the random landmark network" if analyzer.landmark_weights == "random" else \
        f"landmark weights `{analyzer.landmark_weights}`"
    lines = [f"**Model:** `{label}` ({settings.model}; classes {', '.join(settings.class_names)}): {faces}, "
             f"{landmarks}; windows follow the policy of the checkpoint's training data (docs/PREDICT.md)."]
    if settings.data_note:
        lines.append(f"**Note:** {settings.data_note}.")
    return "\n\n".join(lines)


def _no_progress(*args, **kwargs):
    """The progress callback of an analysis outside the page: shows nothing."""


class _PageProgress:
    """The pipeline's progress callback, reported to the page's gr.Progress of the current request: the pipeline
    calls it from its worker thread, where gr.Progress would not find the request it belongs to, so each call
    runs in the context of the thread that started the analysis."""

    def __init__(self, progress):
        self.progress, self.context = progress, contextvars.copy_context()

    def __call__(self, phase, done, total):
        if done % PROGRESS_EVERY == 0 or done == total:
            self.context.copy().run(self.progress, (done, total or None), desc=PHASES[phase], unit="frames")


class VideoAnalyses:
    """Analyses uploaded videos into fresh folders under `workdir`/analyses. Keeps the folders (and the
    uploads: files under `upload_dir`, gradio's folder) of the last `keep_analyses` analyses younger than
    `keep_hours`: before each analysis, older ones are deleted. Not thread-safe: the page runs one analysis at
    a time (the analysis event's concurrency limit is 1)."""

    def __init__(self, models, workdir, landmark_weights, device=None, data_set=None, max_video_seconds=600.0,
                 keep_analyses=5, keep_hours=24.0, upload_dir=None, backend="auto", precision="auto"):
        self.models = {m.label: m for m in models}
        self.backend = dict(backend=backend, precision=precision)  # inference/backends.py
        self.workdir, self.landmark_weights, self.device, self.data_set = workdir, landmark_weights, device, data_set
        self.max_video_seconds, self.keep_analyses, self.keep_hours = max_video_seconds, keep_analyses, keep_hours
        self.upload_dir = os.path.abspath(upload_dir) if upload_dir else None
        self.analyzers = {}  # checkpoint -> Analyzer
        self.kept = []  # KeptAnalysis, oldest first
        self.running = threading.Lock()  # held by the analysis under way

    def describe(self, label):
        """What the page says of the model labelled `label` (loading it), or why it cannot be loaded."""
        try:
            return describe_model(label, self.analyzer(label))
        except AnalysisError as error:
            return f"**Model:** `{label}` cannot be loaded: {error}"

    def analyzer(self, label):
        """The model's Analyzer, built on first use (raises AnalysisError): its faces, landmark network and windows as
        its checkpoint stores them (datasets/description.py)."""
        model = self.models[label]
        if model.checkpoint not in self.analyzers:
            self.analyzers[model.checkpoint] = Analyzer(model.checkpoint, self.landmark_weights, self.device,
                                                        data_set=self.data_set, **self.backend)
        return self.analyzers[model.checkpoint]

    def analyze(self, video, label, progress=_no_progress):
        """(status markdown, timeline.png, table, H.264 video, [predictions.csv, summary.json]) of `video`
        with the model labelled `label`; on bad input, or when the app is stopping, the message and no outputs."""
        with self.running:
            try:
                return self._analyze(video, label, progress)
            except Stopped:
                return ("**Stopped:** the app is shutting down.", *NO_OUTPUTS)

    def wait_idle(self):
        """Return once no analysis is running."""
        with self.running:
            pass

    def _analyze(self, video, label, progress):
        if not video:
            return ("Upload a video first.", *NO_OUTPUTS)
        name = os.path.basename(video)
        self.clean_up(keep=video)
        if not os.path.exists(video) and self._uploaded(video):
            return (f"**Cannot analyse {name}:** the upload was removed (the page keeps the files of its last "
                    f"{self.keep_analyses} analyses, for {self.keep_hours:g} hours at most): upload it again",
                    *NO_OUTPUTS)
        os.makedirs(os.path.join(self.workdir, "analyses"), exist_ok=True)
        folder = tempfile.mkdtemp(dir=os.path.join(self.workdir, "analyses"))
        self.kept.append(KeptAnalysis(folder, video, time.time()))
        try:
            info, overrides = self._probe_within_length_limit(video)
            progress(0.0, desc="loading the model")
            analyzer = self.analyzer(label)
            output_dir = os.path.join(folder, "outputs")
            result = analyzer.analyze(video, output_dir, progress=_PageProgress(progress), info=info, **overrides)
        except AnalysisError as error:  # its reason, which does not name the upload's path
            return (f"**Cannot analyse {name}:** {error.reason}", *NO_OUTPUTS)
        summary = result.summary
        video_out = os.path.join(output_dir, "annotated.mp4")
        return (self._status(name, summary, overrides), os.path.join(output_dir, "timeline.png"), track_table(summary),
                video_out if os.path.isfile(video_out) else None,
                [result.predictions_csv, os.path.join(output_dir, "summary.json")])

    def _uploaded(self, path):
        path = os.path.abspath(path)
        return self.upload_dir is not None and path.startswith(self.upload_dir + os.sep) and \
            not path.startswith(os.path.join(os.path.abspath(self.workdir), "analyses") + os.sep)

    def clean_up(self, keep=None):
        """Delete the analysis folders beyond the newest keep_analyses - 1 (room for the next) or older than
        keep_hours, with their uploads unless a kept analysis, or `keep`, is of the same upload."""
        expired, room = time.time() - 3600 * self.keep_hours, self.keep_analyses - 1
        recent = self.kept[len(self.kept) - room:] if room > 0 else []
        old = [k for k in self.kept if k not in recent or k.created < expired]
        self.kept = [k for k in self.kept if k not in old]
        in_use = {k.upload for k in self.kept} | {keep}
        for record in old:
            shutil.rmtree(record.folder, ignore_errors=True)
            if self._uploaded(record.upload) and record.upload not in in_use:
                with contextlib.suppress(OSError):
                    os.remove(record.upload)
                    if os.path.dirname(record.upload) != self.upload_dir:
                        os.rmdir(os.path.dirname(record.upload))  # gradio's folder of the upload, when empty

    def _probe_within_length_limit(self, video):
        """(the video's VideoInfo, Options overrides): a video longer than max_video_seconds is refused; one whose
        header gives no length is cut there."""
        try:
            info = probe_video(video)
        except VideoError as error:
            raise UnreadableVideo(error.reason, error.path) from error
        seconds = info.duration or (info.frame_count / info.fps if info.frame_count and info.fps else 0)
        if not seconds:
            return info, dict(max_seconds=self.max_video_seconds)
        if seconds > self.max_video_seconds:
            raise InvalidSettings(f"the video lasts {seconds:.0f} s; this page analyses videos of at most "
                                  f"{self.max_video_seconds:g} s (app.py --max_video_seconds)")
        return info, {}

    @staticmethod
    def _status(name, summary, overrides):
        policy, model = summary.window_policy, summary.model
        lines = [f"**{name}**: {len(summary.tracks)} face track(s), {summary.windows} windows over "
                 f"{summary.duration_s:.1f} s of video, analysed in {summary.seconds:.1f} s.",
                 f"Model {model['model']}, classes {', '.join(summary.class_names)}; windows of "
                 f"{policy['num_frames']} crops {policy['sample_step']:.3f} s apart every {policy['stride']:.2f} s.",
                 "Ran on {backend} {precision}: {reason}.".format(**summary.backend)]
        if not summary.complete:  # the warning says where the video broke off
            lines.insert(0, f"**Warning:** {summary.warning}.")
        elif not summary.tracks:
            lines.insert(0, f"**Warning:** no face found in {name}.")
        if summary.repeated_frames:
            lines.append(f"Note: {summary.repeated_frames['windows']} windows repeat frames: "
                         f"{summary.repeated_frames['why']}.")
        if "max_seconds" in overrides:
            lines.append(f"The file does not say how long it is: only its first {overrides['max_seconds']:g} s "
                         "were analysed.")
        return "\n\n".join(lines)


def track_table(summary):
    """The per-track rows the page shows: times, windows, dominant emotion, share of windows per class in %."""
    names = summary.class_names
    rows = [[t["track"], t["start_s"], t["end_s"], t["windows"], t.get("dominant_emotion", ""),
             *(round(100 * float(t["class_shares"][n]), 1) if "class_shares" in t else "" for n in names)]
            for t in summary.tracks]
    return dict(headers=["track", "start (s)", "end (s)", "windows", "dominant emotion", *(f"{n} %" for n in names)],
                data=rows)

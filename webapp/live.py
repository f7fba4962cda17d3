"""What the page's Live tab runs: the browser's camera frames into a live analysis (Analyzer.live), one live
session per model at a time, and what the tab shows of it: each face's current emotion, the rolling timeline of
the last minute, the latency and the model's pace. Frames are kept only in memory and nothing is written."""
import collections
import threading

import cv2
import numpy as np

from inference import AnalysisError, NewestFrame
from inference.outputs import timeline_figure
from utils.stop import Stopped

ROLLING_SECONDS = 60.0  # the timeline shows the readings of the last minute
IDLE_SECONDS = 5.0  # a session whose camera sends no frame for this long ends
STARTING = "**Live:** starting; the first reading comes once a face was seen for a whole window."


class LiveSession:
    """One camera's live analysis with one model: frames go into `frames`; a thread iterates the analysis and
    keeps the readings of the last ROLLING_SECONDS (per track) and each track's latest."""

    def __init__(self, analyzer, owner, label):
        self.analyzer, self.owner, self.label = analyzer, owner, label
        self.frames = NewestFrame(idle_timeout=IDLE_SECONDS)
        self.lock = threading.Lock()
        self.readings = collections.deque()  # LiveReading, in the order they came
        self.latest = {}  # track -> its latest LiveReading
        self.dropped = 0
        self.version = 0  # counts the readings: the timeline is redrawn only when it changed
        self.drawn_version = -1
        self.error, self.ended = None, False
        self.thread = threading.Thread(target=self._run, daemon=True, name="live-session")
        self.thread.start()

    def _run(self):
        try:
            for reading in self.analyzer.live(self.frames):
                with self.lock:
                    self.readings.append(reading)
                    while self.readings[0].end_s < reading.end_s - ROLLING_SECONDS:
                        self.readings.popleft()
                    self.latest[reading.track] = reading
                    self.dropped += reading.dropped
                    self.version += 1
        except AnalysisError as error:
            self.error = error.reason
        except Stopped:  # the app is stopping
            pass
        finally:
            self.ended = True

    def stop(self, because):
        self.frames.close(because)
        self.thread.join()

    def put(self, image_rgb):
        self.frames.put(cv2.cvtColor(image_rgb, cv2.COLOR_RGB2BGR))

    def faces_table(self):
        """The current reading of each face: emotion, probability, latency, the window's end."""
        with self.lock:
            latest = sorted(self.latest.values(), key=lambda r: r.track)
        rows = [[f"#{r.track}", r.top_class, round(r.probabilities[r.top_class], 3), round(r.latency_s, 2),
                 round(r.end_s, 1)] for r in latest]
        return dict(headers=["face", "emotion", "probability", "latency (s)", "window end (s)"], data=rows)

    def figures(self):
        """The status line: the latency, the model's pace, the dropped windows, the camera's frames."""
        if self.error:
            return f"**Live stopped:** {self.error}"
        with self.lock:
            last = self.readings[-1] if self.readings else None
            dropped = self.dropped
        frames = f"{self.frames.received} camera frames ({self.frames.skipped} skipped while tracking was busy)"
        if last is None:
            return f"{STARTING} {frames}."
        return (f"**Live** with `{self.label}`: latency {last.latency_s:.2f} s (capture to reading), model "
                f"{last.model_windows_per_s:.2f} windows/s, {dropped} windows dropped (a newer one was ready); "
                f"{frames}.")

    def timeline(self):
        """The rolling timeline as an RGB image, or None when no reading came since it was last drawn."""
        with self.lock:
            if self.version == self.drawn_version:
                return None
            self.drawn_version = self.version
            readings = list(self.readings)
        names = self.analyzer.model.class_names
        by_track = collections.defaultdict(list)
        for r in readings:
            by_track[r.track].append(((r.start_s + r.end_s) / 2, [r.probabilities[n] for n in names]))
        timeline = {t: (np.array([c for c, _ in rows]), np.array([p for _, p in rows])) for t, rows in by_track.items()}
        fig = timeline_figure(timeline, names, "the last minute, live", width=8)
        import matplotlib.pyplot as plt  # after timeline_figure chose the Agg backend

        fig.canvas.draw()
        image = np.asarray(fig.canvas.buffer_rgba())[..., :3].copy()
        plt.close(fig)
        return image


class LiveSessions:
    """The live sessions of the page, at most one per model; `analyzer(label)` builds or returns a model's
    Analyzer (webapp.analysis.VideoAnalyses.analyzer)."""

    def __init__(self, analyzer):
        self.analyzer = analyzer
        self.sessions = {}  # model label -> LiveSession
        self.started = set()  # the visitors whose camera frames are analysed (Start pressed, Stop not yet)
        self.lock = threading.Lock()

    def start(self, owner):
        """Visitor `owner` pressed Start: their next camera frame starts a live session."""
        with self.lock:
            self.started.add(owner)
        return STARTING

    def frame(self, image, label, owner):
        """Take a camera frame of visitor `owner` for the model `label`: (status, faces table, timeline image), each
        None when unchanged. A frame before Start or after Stop changes nothing; a model another visitor is
        watching live gets a message instead."""
        with self.lock:
            if image is None or owner not in self.started:
                return None, None, None
            session = self.sessions.get(label)
            if session is not None and not session.ended and session.owner != owner:
                return (f"**Busy:** another visitor is watching `{label}` live; one live view per model at a time. "
                        "Try again when it ends, or choose another model.", None, None)
            if session is None or session.ended:
                try:
                    session = self.sessions[label] = LiveSession(self.analyzer(label), owner, label)
                except AnalysisError as error:
                    return f"**Cannot start the live view:** {error.reason}", None, None
        session.put(image)
        return session.figures(), session.faces_table(), session.timeline()

    def stop(self, owner):
        """End the live sessions of visitor `owner` (the Stop button): the status line of the last one."""
        with self.lock:
            self.started.discard(owner)
            mine = [s for s in self.sessions.values() if s.owner == owner and not s.ended]
        for session in mine:
            session.stop("stopped on the page")
        return "**Live stopped.**" if mine else "No live view is running."

    def stop_all(self):
        """End every session (the app stops)."""
        with self.lock:
            self.started.clear()
            sessions = list(self.sessions.values())
        for session in sessions:
            session.stop("the app stopped")

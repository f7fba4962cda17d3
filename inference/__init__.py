"""The video pipeline: time-stamped frames -> faces -> tracks -> windows -> model -> outputs."""
from .detectors import DETECTORS
from .live import LiveReading, NewestFrame
from .pipeline import (
    AnalysisError,
    Analyzer,
    DetectorUnavailable,
    InvalidSettings,
    Options,
    OutOfGPUMemory,
    Result,
    UnreadableVideo,
    UnusableCheckpoint,
    analyze_video,
)
from .summary import AnalysisSummary

__all__ = ["Analyzer", "AnalysisError", "AnalysisSummary", "DetectorUnavailable", "InvalidSettings", "Options",
           "OutOfGPUMemory", "Result", "UnreadableVideo", "UnusableCheckpoint", "analyze_video", "DETECTORS",
           "LiveReading", "NewestFrame"]

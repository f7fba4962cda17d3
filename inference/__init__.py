"""The video pipeline: time-stamped frames -> faces -> tracks -> windows -> model -> outputs."""
from .detectors import DETECTORS
from .pipeline import AnalysisError, Analyzer, Options, Result, analyze_video

__all__ = ["Analyzer", "AnalysisError", "Options", "Result", "analyze_video", "DETECTORS"]

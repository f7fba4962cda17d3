"""The video pipeline: time-stamped frames -> faces -> tracks -> windows -> model -> outputs."""
from .pipeline import DETECTORS, AnalysisError, Analyzer, Options, Result, analyze_video

__all__ = ["Analyzer", "AnalysisError", "Options", "Result", "analyze_video", "DETECTORS"]

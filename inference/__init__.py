"""The video pipeline: time-stamped frames -> faces -> tracks -> windows -> model -> outputs."""

"""The models: S2D (models/s2d.py) and its static image model, the landmark network, their building, loading and
saving, and the released checkpoints' names. Import from the module that defines a name (models.registry's
build_model, models.checkpoint's load_checkpoint, ...): importing models.released does not import PyTorch."""

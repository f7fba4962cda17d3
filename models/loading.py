"""A model with its weights and the landmark network that feeds it: what training, evaluation and the video
pipeline build."""
from .checkpoint import apply_checkpoint, read_checkpoint
from .landmark import build_landmark
from .registry import build_model


def build_model_and_landmark(name, landmark_weights, checkpoint=None, kind="finetuned", trust=False, **model_args):
    """(model, landmark network): the model `name` (`model_args`: models.registry.build_model's), with the weights
    of `checkpoint` (a path, or (path, the dict read from it); None: its initial weights) loaded as `kind`
    (models.checkpoint.load_checkpoint), and the landmark network of `landmark_weights` (a file, or 'random') on
    the model's patch grid."""
    model = build_model(name, **model_args)
    if checkpoint is not None:
        path, content = checkpoint if isinstance(checkpoint, tuple) else (checkpoint, None)
        apply_checkpoint(model, content if content is not None else read_checkpoint(path, trust=trust), kind, path)
    return model, build_landmark(landmark_weights, trust=trust, grid_size=model.grid_size)

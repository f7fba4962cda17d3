from .evaluate import evaluate
from .metrics import classification_metrics, merge_views
from .schedule import cosine_scheduler
from .sdl import SDL, sdl_weight
from .state import resume_training_state, save_training_state
from .train import NonFiniteLossError, train_one_epoch

__all__ = ["evaluate", "classification_metrics", "merge_views", "cosine_scheduler", "SDL", "sdl_weight",
           "resume_training_state", "save_training_state", "NonFiniteLossError", "train_one_epoch"]

from .distributed import init_distributed_mode, is_main_process, get_rank, get_world_size, barrier
from .evaluate import evaluate
from .metrics import classification_metrics, merge_views
from .progress import ProgressLogger
from .schedule import cosine_scheduler
from .sdl import SDL, sdl_weight
from .state import resume_training_state, save_training_state
from .train import NonFiniteLossError, train_one_epoch

"""Emotion-anchor self-distillation loss (SDL): soft targets from per-class feature queues."""
import torch
import torch.nn as nn
import torch.nn.functional as F

SDL_START_EPOCH = 21  # the original's `epoch > 20`: the SDL term and its queue refreshes from this epoch on


def sdl_active(epoch: int) -> bool:
    """Whether the SDL term is added (and its queues refreshed, every --sdl_update_freq epochs) at `epoch`."""
    return epoch >= SDL_START_EPOCH


def sdl_weight(epoch: int) -> float:
    """Weight of the SDL term at an epoch (0 until epoch 30, then 0.01, 0.1, 0.5, 1.0)."""
    for end, weight in ((30, 0.0), (50, 0.01), (60, 0.1), (80, 0.5)):
        if epoch < end:
            return weight
    return 1.0


class SDL(nn.Module):
    """Per class, a FIFO queue of `queue_size` features and the softmax outputs that came with them.

    Buffers (saved with the checkpoint, never trained): `queue` (K, S, D) and `probe` (K, S, K),
    both initialised uniform in [0, 1) as in the original.
    """

    def __init__(self, num_classes: int, dim: int, k: int = 2, queue_size: int = 16):
        super().__init__()
        if not 1 <= k <= queue_size:
            raise ValueError(f"SDL top-k (--K) must be in [1, queue size {queue_size}], got {k}")
        self.num_classes, self.k = num_classes, k
        self.register_buffer("queue", torch.rand(num_classes, queue_size, dim))
        self.register_buffer("probe", torch.rand(num_classes, queue_size, num_classes))

    @torch.no_grad()
    def soft_targets(self, features: torch.Tensor) -> torch.Tensor:
        """(B, D) features -> (B, K) soft labels: the top-k most similar queue entries of every class
        vote with their stored class probabilities, weighted by their (raw, possibly negative) cosine similarity."""
        similarity = F.cosine_similarity(features.float()[:, None, None, :], self.queue[None], dim=-1)  # (B, K, S)
        top_sim, top_idx = similarity.topk(self.k, dim=2)  # (B, K, k)
        classes = torch.arange(self.num_classes, device=features.device)[None, :, None]
        votes = self.probe[classes, top_idx]  # (B, K, k, K)
        weighted = (top_sim[..., None] * votes).sum(dim=(1, 2))
        return weighted / top_sim.sum(dim=(1, 2))[:, None]

    @torch.no_grad()
    def update(self, features: torch.Tensor, logits: torch.Tensor, labels: torch.Tensor) -> None:
        """Push each sample, in batch order, into its true class's queue, dropping the oldest entry."""
        probs = logits.float().softmax(dim=1)
        for feature, prob, label in zip(features.float(), probs, labels.tolist()):
            self.queue[label] = torch.cat([self.queue[label, 1:], feature[None]])
            self.probe[label] = torch.cat([self.probe[label, 1:], prob[None]])

    def loss(self, logits: torch.Tensor, features: torch.Tensor, epoch: int) -> torch.Tensor:
        """Weighted BCE-with-logits between the logits and the soft targets of the features."""
        targets = self.soft_targets(features)
        return sdl_weight(epoch) * F.binary_cross_entropy_with_logits(logits.float(), targets)

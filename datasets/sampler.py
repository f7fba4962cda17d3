"""The `--use_bds` oversampler: class-balanced draws with replacement, sharded across ranks."""
import math
from collections import Counter

import torch
from torch.utils.data import Sampler


class ClassBalancedSampler(Sampler[int]):
    """Each epoch draws len(labels) indices with probability proportional to 1 / (frequency of
    the sample's class), from a generator seeded with seed + epoch (the same draw on every rank);
    rank r takes every num_replicas-th index from r, the draw padded by wrapping to equal shards.
    """

    def __init__(self, labels, num_replicas: int = 1, rank: int = 0, seed: int = 0):
        if len(labels) == 0:
            raise ValueError("ClassBalancedSampler needs at least one label")
        if not 0 <= rank < num_replicas:
            raise ValueError(f"rank must be in [0, num_replicas={num_replicas}), got {rank}")
        counts = Counter(int(label) for label in labels)
        self.weights = torch.tensor([1.0 / counts[int(label)] for label in labels], dtype=torch.float64)
        self.num_replicas, self.rank, self.seed = num_replicas, rank, seed
        self.num_samples = math.ceil(len(labels) / num_replicas)
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __iter__(self):
        generator = torch.Generator().manual_seed(self.seed + self.epoch)
        drawn = torch.multinomial(self.weights, len(self.weights), replacement=True, generator=generator).tolist()
        total = self.num_samples * self.num_replicas
        padded = (drawn * math.ceil(total / len(drawn)))[:total]
        return iter(padded[self.rank:total:self.num_replicas])

    def __len__(self) -> int:
        return self.num_samples

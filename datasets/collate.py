"""Batching of train items that hold several augmentations of one clip (num_sample > 1)."""
from torch.utils.data import default_collate


def _flatten(groups):
    return [item for group in groups for item in group]


def multiple_samples_collate(batch):
    """[(videos, labels, indices[, report]), ...] with lists of num_sample each -> tensors of B * num_sample
    (and the list of per-clip reports of SkipBadClips items)."""
    videos, labels, indices, *reports = zip(*batch)
    collated = default_collate(_flatten(videos)), default_collate(_flatten(labels)), default_collate(_flatten(indices))
    return (*collated, *(list(report) for report in reports))

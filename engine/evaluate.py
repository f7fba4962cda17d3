"""Validation (one center view per clip) and the final multi-view test, both gathered over processes."""
import torch
import torch.nn.functional as F

from .distributed import all_gather_objects, all_reduce_mean
from .metrics import classification_metrics, merge_views


@torch.no_grad()
def predict_views(model, landmark, loader, device, amp_dtype=None, keep_features=False, progress=None):
    """Run the model over a validation or test loader.

    Returns this process's view records (clip_id, segment, crop, logits, label), the mean
    cross-entropy over its batches, and (with keep_features) the features of each view.
    """
    model.eval()
    autocast = torch.autocast(device.type, dtype=amp_dtype, enabled=amp_dtype is not None)
    records, features, losses = [], [], []
    batches = progress.log_every(loader, len(loader), samples_per_step=loader.batch_size) if progress else loader
    for batch in batches:
        videos, labels, clip_ids = batch[0].to(device, non_blocking=True), batch[1], batch[2]
        segments, crops = (batch[3].tolist(), batch[4].tolist()) if len(batch) == 5 else ([0] * len(labels),) * 2
        with autocast:
            logits, feats = model(videos, landmark(videos))
        logits = logits.float().cpu()
        losses.append(F.cross_entropy(logits, labels).item())
        records += zip(clip_ids, segments, crops, logits.numpy(), labels.tolist())
        if keep_features:
            features += feats.float().cpu().unbind(0)
    return records, sum(losses) / max(len(losses), 1), features


def evaluate(model, landmark, loader, device, num_classes, amp_dtype=None, gather=False, keep_features=False,
             progress=None):
    """Metrics (percent) over every clip of the loader's dataset, each clip's distinct views averaged.

    With `gather`, the loader holds this process's shard and every process's view records are
    gathered in memory before merging (views repeated by the sampler's padding count once).
    Returns (metrics, (clip_ids, labels, scores), view records, view features).
    """
    records, loss, features = predict_views(model, landmark, loader, device, amp_dtype, keep_features, progress)
    if gather:
        records = [r for part in all_gather_objects(records) for r in part]
        features = [f for part in all_gather_objects(features) for f in part] if keep_features else features
        loss = all_reduce_mean(loss)
    clip_ids, labels, scores = merge_views(records)
    metrics = classification_metrics(labels, scores, num_classes)
    metrics["loss"] = loss
    return metrics, (clip_ids, labels, scores), records, features

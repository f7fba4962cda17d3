"""Validation (one center view per clip) and the final multi-view test, both gathered over processes."""
import torch

from utils.distributed import all_gather_objects, stop_point_of_all

from .metrics import ViewRecord, classification_metrics, mean_view_loss, merge_views


def views_of_items(batch):
    """The (segment, crop) test views each item of a batch stands for: one (0, 0) for a validation item
    (video, label, clip_id), its own for a test item (..., segment, crop), and the listed ones for a
    distinct-view item (video, label, clip_id, views) of UniqueTestViews."""
    if len(batch) == 4:
        return batch[3]
    if len(batch) == 5:
        return [[(segment, crop)] for segment, crop in zip(batch[3].tolist(), batch[4].tolist())]
    return [[(0, 0)]] * len(batch[1])


@torch.no_grad()
def predict_views(model, landmark, loader, device, amp_dtype=None, keep_features=False, progress=None):
    """Run the model over a validation or test loader.

    Returns this process's ViewRecords, one per test view
    (a distinct view computed once is recorded for every view it stands for), and with keep_features
    the feature of each record.
    """
    model.eval()
    autocast = torch.autocast(device.type, dtype=amp_dtype, enabled=amp_dtype is not None)
    records, features = [], []
    batches = progress.log_every(loader, len(loader), samples_per_step=loader.batch_size) if progress else loader
    for batch in batches:
        stop_point_of_all()
        videos, labels, clip_ids = batch[0].to(device, non_blocking=True), batch[1].tolist(), batch[2]
        with autocast:
            logits, feats = model(videos, landmark(videos))
        logits = logits.float().cpu()
        feats = feats.float().cpu() if keep_features else None
        for item, views in enumerate(views_of_items(batch)):
            records += [ViewRecord(clip_ids[item], segment, crop, logits[item].numpy(), labels[item])
                        for segment, crop in views]
            if keep_features:
                features += [feats[item]] * len(views)
    return records, features


def evaluate(model, landmark, loader, device, num_classes, amp_dtype=None, gather=False, keep_features=False,
             progress=None):
    """Metrics (percent) over every clip of the loader's dataset, each clip's distinct views averaged;
    the loss is the mean cross-entropy over the distinct views.

    With `gather`, the loader holds this process's shard and every process's view records are
    gathered in memory before merging (views repeated by the sampler's padding count once).
    Returns (metrics, (clip_ids, labels, scores), view records, view features).
    """
    records, features = predict_views(model, landmark, loader, device, amp_dtype, keep_features, progress)
    if gather:
        records = [r for part in all_gather_objects(records) for r in part]
        features = [f for part in all_gather_objects(features) for f in part] if keep_features else features
    clip_ids, labels, scores = merge_views(records)
    metrics = classification_metrics(labels, scores, num_classes)
    metrics["loss"] = mean_view_loss(records)
    return metrics, (clip_ids, labels, scores), records, features

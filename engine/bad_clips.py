"""Main-process side of `--skip_bad_clips`: collect the bad clips the workers report in the batches,
share them between ranks, keep them in checkpoints, and leave skipped clips out of the metrics.

Training replaces a bad clip by another clip of the split (see datasets/bad_clips.py). Validation
and test do not: a replaced item is dropped from its batch, and after gathering, every view of a
skipped clip is left out, so the metrics cover fewer clips and say so.
"""
import torch

from datasets.bad_clips import SkipBadClips
from utils.distributed import all_gather_objects

from .metrics import classification_metrics, merge_views


def _select(field, keep):
    return field[torch.tensor(keep)] if isinstance(field, torch.Tensor) else [field[i] for i in keep]


class BadClipWatcher:
    """Iterates a DataLoader over a SkipBadClips dataset, yielding the batches without their report
    field; with `drop_replaced` (evaluation), replaced items are removed from the batch."""

    def __init__(self, loader, drop_replaced: bool):
        self.loader, self.dataset, self.drop_replaced = loader, _bad_clip_dataset(loader.dataset), drop_replaced
        self.sampler, self.batch_size = loader.sampler, loader.batch_size  # what the training loop reads
        self.replaced = 0  # items replaced in the current or last pass


    def __len__(self) -> int:
        return len(self.loader)

    def __iter__(self):
        self.replaced = 0
        for *batch, reports in self.loader:
            replaced, new = self.dataset.record(reports)
            self.replaced += replaced
            for _, reason in new:
                print(f"warning: {reason}; --skip_bad_clips: {self.dataset.split} clip skipped for the rest of "
                      "the run", flush=True)
            if self.drop_replaced and replaced:
                keep = [i for i, report in enumerate(reports) if not report]
                if not keep:
                    continue
                batch = [_select(field, keep) for field in batch]
            yield tuple(batch)


def _bad_clip_dataset(dataset):
    """The SkipBadClips that `dataset` is or wraps (the test set's UniqueTestViews), else None."""
    while dataset is not None and not isinstance(dataset, SkipBadClips):
        dataset = vars(dataset).get("dataset")
    return dataset


def watch_bad_clips(loader, drop_replaced: bool):
    """`loader` wrapped in a BadClipWatcher when its dataset skips bad clips, else `loader` itself."""
    return BadClipWatcher(loader, drop_replaced) if _bad_clip_dataset(loader.dataset) else loader


def _guarded(loaders):
    return [dataset for dataset in map(_bad_clip_dataset, (loader.dataset for loader in loaders)) if dataset]


def share_bad_clips(*loaders) -> None:
    """Give every rank the bad clips found by all ranks (a collective: call on every rank)."""
    for dataset in _guarded(loaders):
        for found in all_gather_objects(dataset.reported):
            dataset.merge(found)


def bad_clip_state(*loaders) -> dict:
    """{split: {clip id: reason}} of the skipped clips, for checkpoints and logs."""
    return {dataset.split: dataset.state_dict() for dataset in _guarded(loaders)}


def load_bad_clip_state(state: dict, *loaders) -> None:
    for dataset in _guarded(loaders):
        dataset.load_state_dict(state.get(dataset.split, {}))


def without_skipped_clips(result, loader, num_classes):
    """engine.evaluate's (metrics, predictions, records, features) with every view of a skipped clip
    left out; metrics['skipped_clips'] lists them (a collective when the loader skips bad clips)."""
    if not _guarded([loader]):
        return result
    share_bad_clips(loader)
    metrics, predictions, records, features = result
    skipped = set(loader.dataset.state_dict())
    if skipped:
        keep = [i for i, record in enumerate(records) if record.clip_id not in skipped]
        records = [records[i] for i in keep]
        features = [features[i] for i in keep] if features else features
        predictions = merge_views(records)
        metrics = {**classification_metrics(predictions[1], predictions[2], num_classes), "loss": metrics["loss"]}
    metrics["skipped_clips"] = sorted(skipped)
    return metrics, predictions, records, features


def skipped_note(metrics) -> str:
    skipped = metrics.get("skipped_clips")
    return (f" [{len(skipped)} clip(s) skipped (undecodable frames): not comparable with results on the full "
            "split]") if skipped else ""


def print_bad_clip_summary(*loaders) -> None:
    for dataset in _guarded(loaders):
        state = dataset.state_dict()
        print(f"--skip_bad_clips: {len(state)} {dataset.split} clip(s) skipped" + "".join(
            f"\n  {clip_id}: {reason}" for clip_id, reason in state.items()))

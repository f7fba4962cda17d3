"""`--skip_bad_clips` at run time: a clip with an undecodable frame is replaced by another clip.

The replacement of clip i is the first clip that decodes among the clips of the same label
after i in CSV order (wrapping around), then among all clips after i. A decode failure is a
property of the files, so this choice depends only on i and on which clips are bad: every
DataLoader worker and every rank makes the same one, whatever it already knows. A failed attempt
leaves numpy's RNG (the only one drawn from before decoding) as it was, so the random draws of
an item are also the same whether the bad clip was tried or known and skipped.

Workers report what they found through the items; the main process collects it (`record`),
enforces `max_bad_fraction` and hands the collected set to the workers of the next epoch.
"""
import bisect
import json
from collections import defaultdict

import numpy as np
from torch.utils.data import Dataset

from .frames import BadClipError


class TooManyBadClipsError(ValueError):
    """More than `max_bad_fraction` of a split is bad."""


class SkipBadClips(Dataset):
    """`dataset` (a VideoClsDataset) whose items carry one more field, a string: empty, or (JSON)
    the index of the requested clip, which was replaced by the clip in the item, and the clips
    found bad while doing so: {"clip": i, "found": [[index, reason], ...]}.

    `clips`, `labels`, `clip_ids`, `class_names`, `mode` and `test_view` are those of `dataset`. `bad` (clip
    index -> reason) is what this process skips; `reported` what the main process collected from the items'
    reports.
    """

    def __init__(self, dataset, split: str, max_bad_fraction: float):
        if not 0 <= max_bad_fraction <= 1:
            raise ValueError(f"--max_bad_fraction must be in [0, 1], got {max_bad_fraction}")
        self.dataset, self.split, self.max_bad_fraction = dataset, split, max_bad_fraction
        # what the training script and UniqueTestViews read of the wrapped dataset
        self.clips, self.labels, self.clip_ids = dataset.clips, dataset.labels, dataset.clip_ids
        self.mode, self.class_names, self.test_view = dataset.mode, dataset.class_names, dataset.test_view
        self.bad: dict[int, str] = {}
        self.reported: dict[int, str] = {}
        by_label = defaultdict(list)
        for index, label in enumerate(dataset.labels):
            by_label[label].append(index)
        self.by_label = dict(by_label)
        self.check_fraction()


    def __len__(self) -> int:
        return len(self.dataset)

    def _candidates(self, clip: int):
        same = self.by_label[self.dataset.labels[clip]]
        position = bisect.bisect_right(same, clip)
        yield from same[position:] + same[:position]
        yield from range(clip + 1, len(self.dataset.clips))
        yield from range(clip)

    def _try(self, index: int):
        """(item, None), or (None, reason) with numpy's RNG as before the attempt."""
        numpy_state = np.random.get_state()
        try:
            return self.dataset[index], None
        except BadClipError as error:
            np.random.set_state(numpy_state)
            return None, BadClipError.summary(error)

    def __getitem__(self, index: int):
        num_clips = len(self.dataset.clips)
        view, clip = divmod(index, num_clips)
        found = []
        if clip not in self.bad:
            item, reason = self._try(index)
            if reason is None:
                return (*item, "")
            self.bad[clip] = reason
            found.append([clip, reason])
        for candidate in self._candidates(clip):
            if candidate in self.bad:
                continue
            item, reason = self._try(view * num_clips + candidate)
            if reason is None:
                return (*item, json.dumps({"clip": clip, "found": found}))
            self.bad[candidate] = reason
            found.append([candidate, reason])
        raise TooManyBadClipsError(f"{self.split} split: every clip has an undecodable frame")

    def check_fraction(self) -> None:
        rows = len(self.dataset.clips) + len(self.dataset.dropped_rows)
        bad = len(self.reported) + len(self.dataset.dropped_rows)
        if bad > self.max_bad_fraction * rows:
            raise TooManyBadClipsError(
                f"{self.split} split: {bad} of {rows} clips are bad ({len(self.dataset.dropped_rows)} invalid CSV "
                f"rows, {len(self.reported)} with undecodable frames), more than --max_bad_fraction "
                f"{self.max_bad_fraction:g}; run scripts/check_data.py to list them all, then fix or clean the data")

    def record(self, reports) -> tuple[int, list[tuple[int, str]]]:
        """Collect the reports (last item field) of a batch: (items replaced, newly found bad clips)."""
        replaced, new = 0, []
        for report in reports:
            if not report:
                continue
            replaced += 1
            for clip, reason in json.loads(report)["found"]:
                if clip not in self.reported:
                    self.reported[clip] = self.bad[clip] = reason
                    new.append((clip, reason))
        if new:
            self.check_fraction()
        return replaced, new

    def merge(self, reported: dict[int, str]) -> None:
        self.reported.update(reported)
        self.bad.update(reported)
        self.check_fraction()

    def state_dict(self) -> dict[str, str]:
        """clip id -> reason of every bad clip."""
        return {self.dataset.clip_ids[clip]: reason for clip, reason in sorted(self.reported.items())}

    def load_state_dict(self, state: dict[str, str]) -> None:
        index = {clip_id: i for i, clip_id in enumerate(self.dataset.clip_ids)}
        self.merge({index[clip_id]: reason for clip_id, reason in state.items() if clip_id in index})

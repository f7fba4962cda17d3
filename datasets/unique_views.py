"""The distinct views of a multi-view test set, so that views identical by construction are computed once."""
from torch.utils.data import Dataset, default_collate


class UniqueTestViews(Dataset):
    """The distinct test views of a 'test' mode VideoClsDataset.

    Two views of a clip with the same frame indices and the same crop start show the same pixels: with
    square resizing all spatial crops coincide, and a clip of at most `clip_len` frames gives equal
    temporal views. Item i is `(video, label, clip_id, views)`, `views` listing the (segment, crop) of
    every test view that distinct view stands for; items keep the order of their first view in the
    full dataset; a --skip_bad_clips report field (datasets/bad_clips.py) is passed on last. Batch them
    with `collate_views`.
    """

    def __init__(self, dataset):
        if dataset.mode != "test":
            raise ValueError(f"UniqueTestViews needs a dataset in 'test' mode, got mode {dataset.mode!r}")
        groups = {}
        for index in range(len(dataset)):
            clip, segment, crop, frame_indices, spatial_start = dataset.test_view(index)
            key = (clip.clip_id, tuple(int(i) for i in frame_indices), spatial_start)
            groups.setdefault(key, (index, []))[1].append((segment, crop))
        self.dataset = dataset
        self.items = list(groups.values())
        self.num_views = len(dataset)

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, index: int):
        first, views = self.items[index]
        video, label, clip_id, _, _, *report = self.dataset[first]  # report: see datasets/bad_clips.py
        return video, label, clip_id, views, *report

    def summary(self) -> str:
        return (f"{len(self.dataset.clips)} test clips, {self.num_views} views, {len(self)} distinct: "
                f"{self.num_views - len(self)} forward passes saved")


def collate_views(batch):
    """Items of UniqueTestViews -> (videos, labels, clip ids, per item the list of views it stands for)."""
    videos, labels, clip_ids, views, *reports = zip(*batch)
    return (default_collate(videos), default_collate(labels), list(clip_ids), list(views),
            *(list(report) for report in reports))

"""Frame-folder video classification dataset in 'train', 'validation' and multi-view 'test' modes."""
from torch.utils.data import Dataset

from .annotations import read_annotations
from .frames import load_frames
from .sampling import all_frame_indices, test_view_starts, train_frame_indices
from .transforms import ClipEvalTransform, ClipTrainTransform

MODES = ("train", "validation", "test")


class VideoClsDataset(Dataset):
    """Clips listed in `anno_path` (header, then `clip path,label`), frames under `data_path/<clip path>/`.

    Items: 'train' -> (video, label, index), or lists of `num_sample` augmentations of the same frames;
    'validation' -> (video, label, clip_id) of one random window drawn by the training rule, as the original
    does, centre-cropped; 'test' -> (video, label, clip_id, segment, crop), with
    item i holding view (segment, crop) = divmod(i // len(clips), test_num_crop) of clip i % len(clips).
    Videos are float (3, clip_len, input_size, input_size). With `images`, the CSV rows name image
    files instead of clip folders, each a one-frame clip (use clip_len 1 and one test view).
    Random draws use python `random`, numpy's and torch's global RNGs. DataLoader workers seed all
    three from the main process's torch RNG; with num_workers=0 seed all three in the main process.
    """

    def __init__(self, anno_path: str, data_path: str, mode: str, nb_classes: int,
                 frame_extensions: tuple[str, ...], clip_len: int = 16, sampling_rate: int = 1,
                 input_size: int = 224, short_side_size: int = 224, test_num_segment: int = 2,
                 test_num_crop: int = 2, num_sample: int = 1, aa: str | None = "rand-m7-n4-mstd0.5-inc1",
                 train_interpolation: str = "bicubic", reprob: float = 0.25, remode: str = "pixel",
                 recount: int = 1, skip_bad_clips: bool = False, images: bool = False):
        if mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
        for name, value in dict(nb_classes=nb_classes, clip_len=clip_len, sampling_rate=sampling_rate,
                                input_size=input_size, short_side_size=short_side_size,
                                test_num_segment=test_num_segment, test_num_crop=test_num_crop,
                                num_sample=num_sample).items():
            if value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value}")
        if short_side_size < input_size:
            raise ValueError(f"short_side_size ({short_side_size}) must be at least input_size ({input_size})")
        auto_augment = None if aa in (None, "", "none") else aa
        if auto_augment is not None and not auto_augment.startswith("rand"):
            raise ValueError(f"aa must be a RandAugment string such as 'rand-m7-n4-mstd0.5-inc1' or 'none', "
                             f"got {aa!r}")
        self.mode = mode
        self.nb_classes = nb_classes
        self.clip_len, self.sampling_rate = clip_len, sampling_rate
        self.short_side_size = short_side_size
        self.test_num_segment, self.test_num_crop = test_num_segment, test_num_crop
        self.num_sample = num_sample
        self.clips, self.dropped_rows = read_annotations(anno_path, data_path, nb_classes, frame_extensions,
                                                         skip_bad_clips, images)
        self.labels = [clip.label for clip in self.clips]
        self.clip_ids = [clip.clip_id for clip in self.clips]
        if mode == "train":
            self.transform = ClipTrainTransform(input_size, short_side_size, auto_augment,
                                                train_interpolation, reprob, remode, recount)
        else:
            self.transform = ClipEvalTransform(input_size, short_side_size)

    def __len__(self) -> int:
        views = self.test_num_segment * self.test_num_crop if self.mode == "test" else 1
        return len(self.clips) * views

    def __getitem__(self, index: int):
        if self.mode == "train":
            return self._train_item(index)
        if self.mode == "validation":
            return self._validation_item(index)
        return self._test_item(index)

    def _random_window(self, clip):
        """The frames of one random window (training and validation: the original's rule for both)."""
        return load_frames(clip, train_frame_indices(len(clip.frame_names), self.clip_len, self.sampling_rate))

    def _train_item(self, index: int):
        clip = self.clips[index]
        frames = self._random_window(clip)
        if self.num_sample == 1:
            return self.transform(frames), clip.label, index
        videos = [self.transform(frames) for _ in range(self.num_sample)]
        return videos, [clip.label] * self.num_sample, [index] * self.num_sample

    def _validation_item(self, index: int):
        clip = self.clips[index]
        return self.transform(self._random_window(clip)), clip.label, clip.clip_id

    def test_view(self, index: int):
        """(clip, segment, crop, frame indices, crop start) of test item `index`: two items of the same clip
        with equal frame indices and crop start show the same pixels."""
        view, clip_index = divmod(index, len(self.clips))
        segment, crop = divmod(view, self.test_num_crop)
        clip = self.clips[clip_index]
        indices = all_frame_indices(len(clip.frame_names), self.clip_len, self.sampling_rate)
        # frames are resized to short_side x short_side, so the longer side is short_side
        temporal_start, spatial_start = test_view_starts(
            len(indices), self.short_side_size, self.clip_len, self.short_side_size,
            self.test_num_segment, self.test_num_crop, segment, crop)
        return clip, segment, crop, indices[temporal_start:temporal_start + self.clip_len], spatial_start

    def _test_item(self, index: int):
        clip, segment, crop, frame_indices, spatial_start = self.test_view(index)
        frames = load_frames(clip, frame_indices)
        return self.transform(frames, spatial_start), clip.label, clip.clip_id, segment, crop

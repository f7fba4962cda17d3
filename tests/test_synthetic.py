import csv
import json
from argparse import Namespace

import numpy as np
import pytest
from PIL import Image
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from datasets.description import describe_args
from datasets.synthetic import DFEW_CLASSES, write_synthetic_dfew
from inference.windows import window_policy
from scripts import make_synthetic_data


def read_split(path):
    with open(path, newline='') as handle:
        rows = list(csv.reader(handle))
    assert rows[0] == ['video_name', 'label']
    return {name: int(label) for name, label in rows[1:]}


def all_files(root):
    return {str(path.relative_to(root)): path.read_bytes()
            for path in sorted(root.rglob('*')) if path.is_file()}


def test_layout_and_stratified_80_20_split(tmp_path):
    summary = write_synthetic_dfew(tmp_path, clips_per_class=5, num_frames=3, size=32)
    clip_dirs = sorted(path for path in (tmp_path / 'clips').iterdir() if path.is_dir())
    assert [d.name for d in clip_dirs] == [f'{i:05d}' for i in range(1, 36)]
    for clip_dir in clip_dirs:
        frames = sorted(clip_dir.iterdir())
        assert [f.name for f in frames] == ['00001.jpg', '00002.jpg', '00003.jpg']
        assert Image.open(frames[0]).size == (32, 32)
    train = read_split(tmp_path / 'splits' / 'train_set_1.csv')
    test = read_split(tmp_path / 'splits' / 'test_set_1.csv')
    assert not set(train) & set(test)
    assert set(train) | set(test) == {d.name for d in clip_dirs}
    assert np.bincount(list(test.values()), minlength=7).tolist() == [1] * 7
    assert np.bincount(list(train.values()), minlength=7).tolist() == [4] * 7
    assert summary['num_clips'] == 35 and summary['generated']
    assert summary['class_counts'] == {name: 5 for name in DFEW_CLASSES}
    assert json.loads((tmp_path / 'synthetic.json').read_text())['clips_per_class'] == 5


def test_k_folds_put_every_clip_in_exactly_one_test_split(tmp_path):
    write_synthetic_dfew(tmp_path, clips_per_class=6, num_frames=2, size=16, folds=3, ext='png')
    clips = {d.name for d in (tmp_path / 'clips').iterdir() if d.is_dir()}
    assert all(f.suffix == '.png' for f in (tmp_path / 'clips').rglob('*/*.*'))
    tested = []
    for k in (1, 2, 3):
        train = read_split(tmp_path / 'splits' / f'train_set_{k}.csv')
        test = read_split(tmp_path / 'splits' / f'test_set_{k}.csv')
        assert set(train) == clips - set(test)
        assert np.bincount(list(test.values()), minlength=7).tolist() == [2] * 7
        tested += list(test)
    assert sorted(tested) == sorted(clips)


def test_same_arguments_give_same_bytes_and_seeds_differ(tmp_path):
    arguments = dict(clips_per_class=2, num_frames=3, size=24, folds=2)
    write_synthetic_dfew(tmp_path / 'a', seed=3, **arguments)
    write_synthetic_dfew(tmp_path / 'b', seed=3, **arguments)
    write_synthetic_dfew(tmp_path / 'c', seed=4, **arguments)
    first = all_files(tmp_path / 'a')
    assert first == all_files(tmp_path / 'b')
    other = all_files(tmp_path / 'c')
    assert first.keys() == other.keys()
    frames = [name for name in first if name.endswith('.jpg')]
    assert all(first[name] != other[name] for name in frames)


def test_description_gives_the_checkpoint_the_windows_faces_and_note_of_the_synthetic_videos(tmp_path):
    """The clips' dataset.json, read by training into the checkpoint's args, gives the analysis windows of one
    expression of scripts/make_synthetic_video.py's videos (its first frame to its last), the whole frame as face."""
    write_synthetic_dfew(tmp_path, clips_per_class=5, num_frames=4, size=16)
    args = Namespace(data_set='DFEW', data_path=str(tmp_path / 'clips'), class_names=None, nb_classes=None,
                     num_frames=4, sampling_rate=1)
    describe_args(args, names_fixed=True)
    assert args.clip_sampling == {'mode': 'spread', 'window_seconds': 1.875, 'stride_seconds': 0.5}
    assert args.clip_detector == 'none' and 'synthetic drawn faces' in args.data_note
    policy = window_policy('DFEW', 4, clip_sampling=args.clip_sampling)
    assert (policy.sample_step, policy.stride, policy.span) == (0.625, 0.5, 1.875)
    assert window_policy('DFEW', 4, stride_seconds=1.0, clip_sampling=args.clip_sampling).stride == 1.0


def test_reuses_matching_dataset_and_refuses_other_folders(tmp_path):
    write_synthetic_dfew(tmp_path / 'data', clips_per_class=5, num_frames=2, size=16)
    stamp = (tmp_path / 'data' / 'clips' / '00001' / '00001.jpg').stat().st_mtime_ns
    (tmp_path / 'data' / 'clips' / 'dataset.json').unlink()  # as in a dataset written before it existed
    again = write_synthetic_dfew(tmp_path / 'data', clips_per_class=5, num_frames=2, size=16)
    assert not again['generated'] and (tmp_path / 'data' / 'clips' / 'dataset.json').is_file()
    assert (tmp_path / 'data' / 'clips' / '00001' / '00001.jpg').stat().st_mtime_ns == stamp
    with pytest.raises(FileExistsError, match='synthetic.json'):
        write_synthetic_dfew(tmp_path / 'data', clips_per_class=5, num_frames=3, size=16)
    (tmp_path / 'other').mkdir()
    (tmp_path / 'other' / 'notes.txt').write_text('mine')
    with pytest.raises(FileExistsError, match='not empty'):
        write_synthetic_dfew(tmp_path / 'other', clips_per_class=5, num_frames=2, size=16)


@pytest.mark.parametrize('arguments, message', [
    (dict(ext='bmp'), 'ext'), (dict(num_frames=1), 'num_frames'), (dict(size=8), 'size'),
    (dict(folds=9), 'folds'), (dict(clips_per_class=0), 'clips_per_class')])
def test_rejects_bad_arguments(tmp_path, arguments, message):
    with pytest.raises(ValueError, match=message):
        write_synthetic_dfew(tmp_path, **{**dict(clips_per_class=5, num_frames=2, size=16),
                                          **arguments})


def test_script_prints_the_training_flags(tmp_path, capsys):
    out = tmp_path / 'demo'
    arguments = ['--out', str(out), '--clips_per_class', '5', '--num_frames', '2', '--size', '16']
    make_synthetic_data.main(arguments)
    assert (f'--data_set DFEW --data_path {out / "clips"} --train_label_path '
            f'{out / "splits" / "train_set_1.csv"} --test_label_path '
            f'{out / "splits" / "test_set_1.csv"}') in capsys.readouterr().out
    make_synthetic_data.main(arguments)
    assert 'already exists' in capsys.readouterr().out
    with pytest.raises(SystemExit, match='not empty'):
        make_synthetic_data.main([*arguments, '--seed', '1'])


def clip_features(root, split):
    """Per clip: 12x12 grey last-minus-first difference, and mean RGB + brightness."""
    differences, colours, labels = [], [], []
    for clip, label in read_split(root / 'splits' / f'{split}_set_1.csv').items():
        frames = [Image.open(path) for path in sorted((root / 'clips' / clip).iterdir())]
        grey = [np.asarray(f.convert('L').resize((12, 12), Image.BILINEAR), float)
                for f in (frames[0], frames[-1])]
        rgb = np.stack([np.asarray(f, float) for f in frames])
        differences.append((grey[1] - grey[0]).ravel())
        colours.append([*rgb.mean(axis=(0, 1, 2)), rgb.mean()])
        labels.append(label)
    return np.array(differences), np.array(colours), np.array(labels)


def test_expression_dynamics_are_learnable_but_colours_are_not(tmp_path):
    write_synthetic_dfew(tmp_path, clips_per_class=60, num_frames=4, size=48)
    train_difference, train_colour, train_label = clip_features(tmp_path, 'train')
    test_difference, test_colour, test_label = clip_features(tmp_path, 'test')

    def held_out_accuracy(train_features, test_features):
        classifier = make_pipeline(StandardScaler(), LogisticRegression(C=0.1, max_iter=3000))
        return classifier.fit(train_features, train_label).score(test_features, test_label)

    assert held_out_accuracy(train_difference, test_difference) > 0.9
    assert held_out_accuracy(train_colour, test_colour) < 0.3

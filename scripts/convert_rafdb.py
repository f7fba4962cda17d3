"""Convert RAF-DB basic's `EmoLabel/list_patition_label.txt` to the image CSVs of the static stage.

Each line `<name> <label 1..7>` (1 Surprise, 2 Fear, 3 Disgust, 4 Happiness, 5 Sadness, 6 Anger,
7 Neutral) becomes the row `Image/aligned/<stem>_aligned.jpg,<label - 1>` of `train.csv` or
`test.csv` (by the `train_` / `test_` name prefix), paths relative to the RAF-DB basic folder:
train with `--data_set RAFDB --data_path <RAF-DB basic folder>`.
"""
import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run as a file: import scripts.*
from datasets.classes import RAFDB_CLASSES
from scripts.annotation_io import AnnotationError, numbered_lines, parse_label, unique_rows
from utils.files import write_csv_atomically

HEADER = ('image', 'label')
SPLITS = ('train', 'test')


def convert_label_file(path):
    """{'train': rows, 'test': rows} of (image path, 0-based label)."""
    numbered = {split: [] for split in SPLITS}
    for number, text in numbered_lines(path):
        fields = text.split()
        if len(fields) != 2:
            raise AnnotationError(path, number, f'{text!r}; expected "<image name> <label 1..7>"')
        name, label_text = fields
        split = name.split('_', 1)[0]
        if split not in SPLITS or not name.lower().endswith('.jpg'):
            raise AnnotationError(path, number, f'image name {name!r}; expected train_*.jpg or test_*.jpg')
        label = parse_label(path, number, label_text, 1, len(RAFDB_CLASSES)) - 1
        numbered[split].append((number, f'Image/aligned/{Path(name).stem}_aligned.jpg', label))
    return {split: unique_rows(path, rows) for split, rows in numbered.items()}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--input', type=Path, required=True,
                        help='list_patition_label.txt, or the RAF-DB basic folder holding EmoLabel/')
    parser.add_argument('--output', type=Path, required=True, help='folder for train.csv and test.csv')
    args = parser.parse_args(argv)
    source = args.input / 'EmoLabel' / 'list_patition_label.txt' if args.input.is_dir() else args.input
    try:
        if not source.is_file():
            raise FileNotFoundError(f'{source}: no such label file')
        converted = convert_label_file(source)
    except (AnnotationError, FileNotFoundError) as error:
        sys.exit(f'error: {error}')
    for split, rows in converted.items():
        write_csv_atomically(args.output / f'{split}.csv', HEADER, rows)
        print(f'wrote {args.output / f"{split}.csv"} ({len(rows)} rows)')


if __name__ == '__main__':
    main()

"""Convert AffectNet's official `training.csv` / `validation.csv` to the image CSVs of the static stage.

Keeps the columns `subDirectory_filePath` (paths stay relative to `Manually_Annotated_Images`) and
`expression` (0 Neutral, 1 Happy, 2 Sad, 3 Surprise, 4 Fear, 5 Disgust, 6 Anger, 7 Contempt,
8 None, 9 Uncertain, 10 No-Face). `--num_classes 7` keeps 0..6 (AffectNet-7, `--data_set AffectNet7`),
`--num_classes 8` keeps 0..7 (AffectNet-8); the other rows are dropped and counted.
--input is one official CSV (then --output is the CSV to write) or the folder holding both
(then --output is the folder for `train.csv` from training.csv and `test.csv` from validation.csv,
the usual test split since AffectNet's own test set is not public).
"""
import argparse
import csv
import functools
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run as a file: import scripts.*
from scripts.annotation_io import AnnotationError, convert, numbered_lines, parse_label, unique_rows

HEADER = ('image', 'label')
PATH_COLUMN, LABEL_COLUMN = 'subDirectory_filePath', 'expression'
MAX_EXPRESSION = 10
OFFICIAL_FILES = {'train.csv': 'training.csv', 'test.csv': 'validation.csv'}


def convert_official_file(path, classes):
    """Rows (image path, label) with label < classes; reports how many rows were dropped."""
    lines = numbered_lines(path)
    if not lines:
        raise AnnotationError(path, 1, f'empty file; expected a header with {PATH_COLUMN} and {LABEL_COLUMN}')
    header_number, header_text = lines[0]
    header = [name.strip() for name in next(csv.reader([header_text]))]
    missing = [name for name in (PATH_COLUMN, LABEL_COLUMN) if name not in header]
    if missing:
        raise AnnotationError(path, header_number, f'header has no column {", ".join(missing)}: {header}')
    path_index, label_index = header.index(PATH_COLUMN), header.index(LABEL_COLUMN)
    kept, dropped = [], 0
    for number, fields in ((number, next(csv.reader([text]))) for number, text in lines[1:]):
        if len(fields) != len(header):
            raise AnnotationError(path, number, f'{len(fields)} fields; expected {len(header)} as in the header')
        label = parse_label(path, number, fields[label_index].strip(), 0, MAX_EXPRESSION)
        if label < classes:
            kept.append((number, fields[path_index].strip(), label))
        else:
            dropped += 1
    print(f'{path}: kept {len(kept)} images, dropped {dropped} with expression {classes}..{MAX_EXPRESSION}')
    return unique_rows(path, kept)


def official_files(folder):
    files = {output: folder / name for output, name in OFFICIAL_FILES.items() if (folder / name).is_file()}
    if not files:
        raise FileNotFoundError(f'{folder}: no {" or ".join(OFFICIAL_FILES.values())}')
    return files


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--input', type=Path, required=True, help='training.csv / validation.csv or their folder')
    parser.add_argument('--output', type=Path, required=True, help='output CSV, or folder for a folder input')
    parser.add_argument('--num_classes', type=int, choices=(7, 8), default=7)
    args = parser.parse_args(argv)
    try:
        convert(args.input, args.output, official_files,
                functools.partial(convert_official_file, classes=args.num_classes), HEADER)
    except (AnnotationError, FileNotFoundError, FileExistsError) as error:
        sys.exit(f'error: {error}')


if __name__ == '__main__':
    main()

"""Convert MAFW single-label text lists (`03747.mp4 anger`) to `video_name,labels` CSVs.

--input is either one list (then --output is the CSV to write) or a folder holding
`set_{k}/train.txt` and `set_{k}/test.txt` (then --output is the folder that receives
`set_{k}/train.csv` and `set_{k}/test.csv`). Class names match case-insensitively; the label is
the 0-based index in the order below.
"""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run as a file: import scripts.*
from datasets.classes import MAFW_CLASSES
from scripts.annotation_io import AnnotationError, converter_cli, numbered_lines, unique_rows

HEADER = ('video_name', 'labels')
VIDEO_SUFFIX = '.mp4'


def parse_line(path, line_number, text):
    """(clip name without .mp4, 0-based class index) of one `<clip>.mp4 <class>` line."""
    fields = text.split()
    if len(fields) != 2 or not fields[0].endswith(VIDEO_SUFFIX):
        raise AnnotationError(path, line_number,
                              f'{text!r}; expected "<clip>{VIDEO_SUFFIX} <class name>"')
    name, class_name = fields
    if class_name.lower() not in MAFW_CLASSES:
        raise AnnotationError(path, line_number,
                              f'unknown class {class_name!r}; expected one of {MAFW_CLASSES}')
    return name[:-len(VIDEO_SUFFIX)], MAFW_CLASSES.index(class_name.lower())


def convert_list(path):
    """Rows (clip name, 0-based label) of one MAFW list."""
    return unique_rows(path, [(number, *parse_line(path, number, text))
                              for number, text in numbered_lines(path)])


def fold_lists(folder):
    """{relative output path: list file} for every set_{k}/{train,test}.txt under `folder`."""
    files = {Path(path.parent.name) / f'{path.stem}.csv': path
             for path in sorted(folder.glob('set_*/*.txt')) if path.stem in ('train', 'test')}
    if not files:
        raise FileNotFoundError(f'{folder}: no set_<k>/train.txt or set_<k>/test.txt files')
    return files


def main(argv=None):
    converter_cli(__doc__, fold_lists, convert_list, HEADER, argv)


if __name__ == '__main__':
    main()

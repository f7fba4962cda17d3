"""Check and normalise FERV39K lists (`Crime/Angry/0063 0`, space separated) to `path,id` CSVs.

--input is either one list (then --output is the CSV to write) or a folder of `*.txt`/`*.csv`
lists such as the official `4_setups/All_scenes` (then --output is the folder receiving one
`<name>.csv` per list). Each path is scene/emotion/clip; its label must be the 0-based index of
that emotion in the class order below.
"""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run as a file: import scripts.*
from datasets.classes import FERV39K_CLASSES
from scripts.annotation_io import AnnotationError, converter_cli, numbered_lines, parse_label, unique_rows

HEADER = ('path', 'id')


def parse_line(path, line_number, text):
    """(clip path, label) of one `<scene>/<emotion>/<clip> <label>` line."""
    fields = text.split()
    if len(fields) != 2 or len(fields[0].split('/')) != 3:
        raise AnnotationError(path, line_number, f'{text!r}; expected "<scene>/<emotion>/<clip> <label>"')
    clip, label_text = fields
    label = parse_label(path, line_number, label_text, 0, len(FERV39K_CLASSES) - 1)
    emotion = clip.split('/')[1]
    if emotion.lower() != FERV39K_CLASSES[label]:
        raise AnnotationError(path, line_number, f'label {label} ({FERV39K_CLASSES[label]}) does '
                                                 f'not match the emotion folder {emotion!r}')
    return clip, label


def convert_list(path):
    """Rows (clip path, label) of one FERV39K list."""
    return unique_rows(path, [(number, *parse_line(path, number, text))
                              for number, text in numbered_lines(path)])


def folder_lists(folder):
    """{output file name: list file} for every *.txt / *.csv list directly in `folder`."""
    files = {f'{path.stem}.csv': path for path in sorted(folder.iterdir())
             if path.suffix in ('.txt', '.csv')}
    if not files:
        raise FileNotFoundError(f'{folder}: no *.txt or *.csv lists')
    return files


def main(argv=None):
    converter_cli(__doc__, folder_lists, convert_list, HEADER, argv)


if __name__ == '__main__':
    main()

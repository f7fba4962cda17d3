"""Reading annotation lists with line numbers and writing converted CSVs atomically."""
import argparse
import csv
import sys
from pathlib import Path

from utils.files import write_csv_atomically


class AnnotationError(ValueError):
    """Bad annotation input; the message names the file and line."""

    def __init__(self, path, line_number, message):
        super().__init__(f'{path}:{line_number}: {message}')


def numbered_lines(path):
    """(line number, stripped text) for every line of a text file that is not blank."""
    with open(path, newline='', encoding='utf-8-sig') as handle:
        return [(number, line.strip()) for number, line in enumerate(handle, start=1)
                if line.strip()]


def csv_records(path, header):
    """(line number, fields) for every data row of a CSV whose first row must equal `header`."""
    lines = numbered_lines(path)
    if not lines:
        raise AnnotationError(path, 1, f'empty file; expected the header {",".join(header)}')
    records = [(number, next(csv.reader([text]))) for number, text in lines]
    first_number, found = records[0]
    if [field.strip().lower() for field in found] != list(header):
        raise AnnotationError(path, first_number,
                              f'header {",".join(found)!r}; expected {",".join(header)!r}')
    for number, fields in records[1:]:
        if len(fields) != len(header):
            raise AnnotationError(path, number,
                                  f'{len(fields)} fields in {fields}; expected {len(header)}')
    return [(number, [field.strip() for field in fields]) for number, fields in records[1:]]


def parse_label(path, line_number, text, low, high):
    """The integer in `text`, which must lie in low..high."""
    if not text.lstrip('-').isdigit() or not low <= int(text) <= high:
        raise AnnotationError(path, line_number, f'label {text!r}; expected an integer {low}..{high}')
    return int(text)


def unique_rows(path, numbered_rows):
    """[(clip, label)] from [(line number, clip, label)]; refuses an empty list or a repeated clip."""
    if not numbered_rows:
        raise AnnotationError(path, 1, 'no clips in this file')
    first_seen = {}
    for number, clip, _ in numbered_rows:
        if clip in first_seen:
            raise AnnotationError(path, number,
                                  f'duplicate clip {clip!r} (first on line {first_seen[clip]})')
        first_seen[clip] = number
    return [(clip, label) for _, clip, label in numbered_rows]


def convert(input_path, output_path, folder_sources, convert_file, header):
    """Convert one file, or every file `folder_sources(folder)` finds ({relative output: input}).

    All inputs are read and checked before the first output is written.
    """
    if input_path.is_dir():
        sources = {output_path / relative: path
                   for relative, path in folder_sources(input_path).items()}
    else:
        sources = {output_path: input_path}
    for output, path in sources.items():
        if output.resolve() == path.resolve():
            raise FileExistsError(f'{output}: refusing to overwrite the input; choose another --output')
    converted = {output: convert_file(path) for output, path in sources.items()}
    for output, rows in converted.items():
        write_csv_atomically(output, header, rows)
        print(f'wrote {output} ({len(rows)} rows)')


def converter_cli(description, folder_sources, convert_file, header, argv=None):
    """Command line `--input FILE_OR_FOLDER --output FILE_OR_FOLDER` around `convert`."""
    parser = argparse.ArgumentParser(description=description,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--input', type=Path, required=True, help='annotation file or folder')
    parser.add_argument('--output', type=Path, required=True,
                        help='output CSV for a file input, output folder for a folder input')
    args = parser.parse_args(argv)
    try:
        convert(args.input, args.output, folder_sources, convert_file, header)
    except (AnnotationError, FileNotFoundError, FileExistsError) as error:
        sys.exit(f'error: {error}')

"""Convert the official DFEW split files (labels 1..7) to 0-based `video_name,label` CSVs.

--input is either one official CSV (then --output is the CSV to write) or the official
`EmoLabel_DataSplit` folder holding `train(single-labeled)/set_{k}.csv` and
`test(single-labeled)/set_{k}.csv` (then --output is the folder for `train_set_{k}.csv` and
`test_set_{k}.csv`). Class order (both numberings): happy, sad, neutral, angry, surprise,
disgust, fear.
"""
import re
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run as a file: import scripts.*
from datasets.classes import DFEW_CLASSES
from scripts.annotation_io import AnnotationError, converter_cli, csv_records, parse_label, unique_rows

HEADER = ('video_name', 'label')
NUM_CLASSES = len(DFEW_CLASSES)
SPLIT_FOLDERS = {'train': 'train(single-labeled)', 'test': 'test(single-labeled)'}


def clip_name(path, line_number, text):
    """DFEW clip names are 5 digits; spreadsheet software may have dropped leading zeros."""
    if not text.isdigit() or len(text) > 5:
        raise AnnotationError(path, line_number, f'clip name {text!r}; expected up to 5 digits')
    return text.zfill(5)


def convert_split_file(path):
    """Rows (clip name, 0-based label) of one official split file."""
    return unique_rows(path, [(number, clip_name(path, number, name),
                               parse_label(path, number, label, 1, NUM_CLASSES) - 1)
                              for number, (name, label) in csv_records(path, HEADER)])


def official_split_files(folder):
    """{output file name: official file} for every fold found in an EmoLabel_DataSplit folder."""
    pattern = re.compile(r'set_(\d+)\.csv')
    files = {}
    for split, subfolder in SPLIT_FOLDERS.items():
        for path in sorted((folder / subfolder).glob('set_*.csv')):
            match = pattern.fullmatch(path.name)
            if match:
                files[f'{split}_set_{match.group(1)}.csv'] = path
    if not files:
        raise FileNotFoundError(f'{folder}: no {SPLIT_FOLDERS["train"]}/set_<k>.csv or '
                                f'{SPLIT_FOLDERS["test"]}/set_<k>.csv files')
    return files


def main(argv=None):
    converter_cli(__doc__, official_split_files, convert_split_file, HEADER, argv)


if __name__ == '__main__':
    main()

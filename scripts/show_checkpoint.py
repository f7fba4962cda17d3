"""Print what checkpoints hold: their entries, epoch and every stored training argument.

    python scripts/show_checkpoint.py ckpts/<released MAFW fold 1>.pth      # e.g. args.sampling_rate
"""
import argparse
import pickle
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run as a file: import models
from models.checkpoint import describe


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('files', nargs='+', metavar='FILE')
    parser.add_argument('--trust_checkpoint', action='store_true',
                        help='allow arbitrary pickled objects (only for files you trust)')
    args = parser.parse_args(argv)
    for path in args.files:
        try:
            print('\n'.join(describe(path, args.trust_checkpoint)))
        except (OSError, ValueError, pickle.UnpicklingError) as error:
            sys.exit(f'error: {error}')


if __name__ == '__main__':
    main()

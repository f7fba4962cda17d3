"""Write the synthetic DFEW-layout demo dataset (video clips) or, with --kind images, the static
dataset of still faces for the image model, and print the main_finetune.py flags to train on it.

Idempotent: reuses an existing synthetic dataset with the same parameters, refuses any other
non-empty folder.
"""
import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run as a file: import datasets.*
from datasets.synthetic import FRAME_EXTENSIONS, write_synthetic_dfew, write_synthetic_images


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument('--kind', choices=('clips', 'images'), default='clips')
    parser.add_argument('--out', type=Path, default=None,
                        help='default: data/synthetic_dfew (clips), data/synthetic_images (images)')
    parser.add_argument('--clips_per_class', type=int, default=60)
    parser.add_argument('--images_per_class', type=int, default=1000, help='with --kind images')
    parser.add_argument('--num_frames', type=int, default=16)
    parser.add_argument('--size', type=int, default=112, help='frame (image) width and height in pixels')
    parser.add_argument('--folds', type=int, default=1,
                        help='1: stratified 80/20 split; k > 1: stratified k-fold splits')
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('--ext', choices=FRAME_EXTENSIONS, default='jpg')
    args = parser.parse_args(argv)
    if args.kind == 'images':
        return write_images(args)
    args.out = args.out or Path('data/synthetic_dfew')

    print(f'writing {7 * args.clips_per_class} clips of {args.num_frames} frames '
          f'({args.size}x{args.size} {args.ext}) to {args.out} ...', flush=True)
    start = time.time()
    try:
        summary = write_synthetic_dfew(args.out, clips_per_class=args.clips_per_class,
                                       num_frames=args.num_frames, size=args.size,
                                       folds=args.folds, seed=args.seed, ext=args.ext,
                                       progress=progress_printer('clips', start))
    except (FileExistsError, ValueError) as error:
        sys.exit(f'error: {error}')
    if summary['generated']:
        print(f'done in {time.time() - start:.1f} s')
    else:
        print('a synthetic dataset with these parameters already exists there; nothing written')
    print(f'clips: {summary["clips_dir"]} ({summary["num_clips"]} clips, per class '
          f'{summary["class_counts"]})')
    for k, (train, test, sizes) in enumerate(zip(summary['train_csvs'], summary['test_csvs'],
                                                 summary['fold_sizes']), start=1):
        print(f'fold {k}: {train} ({sizes["train"]} clips), {test} ({sizes["test"]} clips)')
    print('train on fold 1 with: python main_finetune.py --data_set DFEW '
          f'--data_path {summary["clips_dir"]} --train_label_path {summary["train_csvs"][0]} '
          f'--test_label_path {summary["test_csvs"][0]}')



def progress_printer(unit, start):
    def report(done, total):
        if done % max(1, total // 10) == 0 or done == total:
            elapsed = time.time() - start
            print(f'  {done}/{total} {unit} ({elapsed:.1f} s, about {elapsed / done * (total - done):.0f} s left)',
                  flush=True)
    return report


def write_images(args):
    out = args.out or Path('data/synthetic_images')
    print(f'writing {7 * args.images_per_class} still faces ({args.size}x{args.size} jpg) to {out} ...', flush=True)
    start = time.time()
    try:
        summary = write_synthetic_images(out, images_per_class=args.images_per_class, size=args.size,
                                         seed=args.seed, progress=progress_printer('images', start))
    except (FileExistsError, ValueError) as error:
        sys.exit(f'error: {error}')
    print(f'done in {time.time() - start:.1f} s' if summary['generated'] else
          'a synthetic image dataset with these parameters already exists there; nothing written')
    print(f'train: {summary["train_csv"]} ({summary["num_train"]} images), '
          f'test: {summary["test_csv"]} ({summary["num_test"]} images)')
    print('train the image model with: python main_finetune.py --model s2d_image_tiny_patch8_64 '
          f'--data_set IMAGES --nb_classes 7 --data_path {out} --train_label_path {summary["train_csv"]} '
          f'--test_label_path {summary["test_csv"]} --input_size {args.size} --short_side_size {args.size}')


if __name__ == '__main__':
    main()

"""The paper's results (UAR / WAR, %, per fold), the one place they are written: the README's "Published results"
table is checked against them, and the evaluation of the released checkpoints (scripts/evaluate_released.py)
prints them beside the measured ones.

The means are computed from the folds, rounded to two decimals (two means of the original README do not follow from
its folds: docs/DIFFERENCES.md)."""
import numpy as np

DATA_SETS = ("FERV39K", "DFEW", "MAFW")
# oversampled (the "w/ oversampling" column) -> data set -> fold (None: one split) -> (UAR, WAR)
PUBLISHED = {
    False: {
        "FERV39K": {None: (41.28, 52.56)},
        "DFEW": {1: (61.56, 76.16), 2: (59.93, 73.99), 3: (61.33, 76.41), 4: (62.75, 76.31), 5: (63.51, 77.27)},
        "MAFW": {1: (32.78, 46.76), 2: (40.43, 55.96), 3: (47.01, 62.08), 4: (45.66, 62.61), 5: (43.45, 59.42)},
    },
    True: {
        "FERV39K": {None: (43.97, 46.21)},
        "DFEW": {1: (64.80, 75.35), 2: (62.54, 72.53), 3: (66.47, 75.87), 4: (66.03, 74.48), 5: (67.43, 76.80)},
        "MAFW": {1: (36.16, 44.21), 2: (41.94, 51.22), 3: (48.08, 61.48), 4: (47.67, 60.64), 5: (43.16, 58.55)},
    },
}
COLUMNS = ("data_set", "fold", "paper_uar", "measured_uar", "diff_uar", "paper_war", "measured_war", "diff_war")


def folds(data_set):
    """The folds of `data_set` (None for a single split)."""
    return list(PUBLISHED[False][data_set])


def published_mean(data_set, oversampled):
    """(UAR, WAR) averaged over the folds, rounded as the table shows them."""
    return tuple(round(float(v), 2) for v in np.mean(list(PUBLISHED[oversampled][data_set].values()), axis=0))


def _cells(paper, measured):
    if measured is None:
        return [paper[0], "", "", paper[1], "", ""]
    return [paper[0], round(measured[0], 2), round(round(measured[0], 2) - paper[0], 2),
            paper[1], round(measured[1], 2), round(round(measured[1], 2) - paper[1], 2)]


def comparison_rows(measured, oversampled):
    """Rows of COLUMNS: per fold and, for cross-validated data sets, the mean; `measured` maps (data set, fold) to
    (UAR, WAR); a fold not measured has empty measured cells, and its data set's mean too."""
    rows = []
    for data_set in DATA_SETS:
        paper = PUBLISHED[oversampled][data_set]
        for fold, values in paper.items():
            rows.append([data_set, "all" if fold is None else fold, *_cells(values, measured.get((data_set, fold)))])
        if len(paper) > 1:
            done = [measured[(data_set, f)] for f in paper if (data_set, f) in measured]
            mean = tuple(np.mean(done, axis=0)) if len(done) == len(paper) else None
            rows.append([data_set, "mean", *_cells(published_mean(data_set, oversampled), mean)])
    return rows


def markdown_table(rows, oversampled):
    title = f"Published (w/{'' if oversampled else 'o'} oversampling) vs measured, UAR / WAR %"
    header = "| data set | fold | paper UAR | measured UAR | diff | paper WAR | measured WAR | diff |"
    lines = [title, "", header, "|---|---|---|---|---|---|---|---|"]
    for row in rows:
        lines.append("| " + " | ".join(f"{v:+.2f}" if k in (4, 7) and v != "" else
                                      f"{v:.2f}" if isinstance(v, float) else str(v) for k, v in enumerate(row)) + " |")
    return "\n".join(lines) + "\n"

"""Clip-level metrics (UAR, WAR, F1, per-class accuracy, confusion matrix) and multi-view merging."""
from typing import NamedTuple

import numpy as np
import torch
import torch.nn.functional as F
from sklearn.metrics import confusion_matrix, f1_score, recall_score

from utils.files import atomic_output


class ViewRecord(NamedTuple):
    """The model's logits on one test view (temporal segment, spatial crop) of a clip, and the clip's label."""
    clip_id: str
    segment: int
    crop: int
    logits: np.ndarray
    label: int


def distinct_views(records):
    """{(clip_id, segment, crop): (logits, label)} from view records (clip_id, segment, crop, logits, label);
    a view seen twice (the distributed sampler pads with repeats) counts once."""
    views = {}
    for clip_id, segment, crop, logits, label in records:
        views.setdefault((clip_id, segment, crop), (logits, label))
    return views


def merge_views(records):
    """Average the softmax scores of each clip's distinct views.

    records: iterable of (clip_id, segment, crop, logits (K,) array, label). Returns (clip_ids, labels (N,),
    scores (N, K)) in first-seen clip order.
    """
    views, labels = {}, {}
    for (clip_id, _, _), (logits, label) in distinct_views(records).items():
        views.setdefault(clip_id, []).append(torch.as_tensor(logits, dtype=torch.float64).softmax(0).numpy())
        labels[clip_id] = int(label)
    clip_ids = list(views)
    scores = np.stack([np.mean(views[c], axis=0) for c in clip_ids])
    return clip_ids, np.array([labels[c] for c in clip_ids]), scores


def mean_view_loss(records):
    """Mean cross-entropy over the distinct views of the records (independent of batch size and process count)."""
    views = list(distinct_views(records).values())
    logits = torch.as_tensor(np.stack([logits for logits, _ in views]), dtype=torch.float64)
    return F.cross_entropy(logits, torch.tensor([label for _, label in views])).item()


def classification_metrics(labels, scores, num_classes):
    """Metrics in percent from integer labels (N,) and class scores (N, K).

    UAR is the mean recall over the classes present in the ground truth; WAR the overall accuracy.
    """
    labels, scores = np.asarray(labels), np.asarray(scores)
    preds = scores.argmax(axis=1)
    present = np.unique(labels)
    classes = np.arange(num_classes)
    conf = confusion_matrix(labels, preds, labels=classes)
    support = conf.sum(axis=1)
    per_class = np.where(support > 0, conf.diagonal() / np.maximum(support, 1), np.nan)
    top5 = (np.argsort(-scores, axis=1, kind="stable")[:, :5] == labels[:, None]).any(axis=1)
    return {
        "acc1": 100.0 * float((preds == labels).mean()),
        "acc5": 100.0 * float(top5.mean()),
        "uar": 100.0 * float(recall_score(labels, preds, labels=present, average="macro", zero_division=0)),
        "war": 100.0 * float((preds == labels).mean()),
        "weighted_f1": 100.0 * float(f1_score(labels, preds, average="weighted", zero_division=0)),
        "micro_f1": 100.0 * float(f1_score(labels, preds, average="micro", zero_division=0)),
        "macro_f1": 100.0 * float(f1_score(labels, preds, average="macro", zero_division=0)),
        "class_acc": [None if np.isnan(a) else 100.0 * float(a) for a in per_class],
        "confusion_matrix": conf.tolist(),
        "num_clips": int(len(labels)),
    }


def format_confusion_matrix(conf, class_names):
    """Confusion matrix as aligned text: rows are true classes, columns predictions."""
    width = max(6, max(len(n) for n in class_names) + 1, max(len(str(v)) for row in conf for v in row) + 1)
    lines = ["true \\ pred".ljust(width) + "".join(n[:width - 1].rjust(width) for n in class_names)]
    for name, row in zip(class_names, conf):
        lines.append(name[:width - 1].ljust(width) + "".join(str(v).rjust(width) for v in row))
    return "\n".join(lines)


def plot_confusion_matrix(conf, class_names, path, title):
    """Row-normalised confusion matrix with counts, as a PNG."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    conf = np.asarray(conf)
    norm = conf / np.maximum(conf.sum(axis=1, keepdims=True), 1)
    size = 1.0 + 0.6 * len(class_names)
    fig, ax = plt.subplots(figsize=(size + 1.5, size))
    image = ax.imshow(norm, cmap="Blues", vmin=0, vmax=1)
    ax.set_xticks(range(len(class_names)), class_names, rotation=45, ha="right")
    ax.set_yticks(range(len(class_names)), class_names)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title)
    for i in range(conf.shape[0]):
        for j in range(conf.shape[1]):
            ax.text(j, i, f"{conf[i, j]}\n{norm[i, j]:.0%}", ha="center", va="center", fontsize=7,
                    color="white" if norm[i, j] > 0.5 else "black")
    fig.colorbar(image, ax=ax, fraction=0.046)
    fig.tight_layout()
    with atomic_output(path) as tmp_path:
        fig.savefig(tmp_path, dpi=120, format="png")
    plt.close(fig)

"""Figures of SPEC §10: score histograms (HESP Fig. 4), t-SNE (Fig. 5), ROC, CCR–FPR, confusion, prompt box.

Every plot function returns a :class:`matplotlib.figure.Figure` built without pyplot (so no
global state and no GUI backend: the figure draws on an Agg canvas), and
:func:`save_figure` writes it as PNG and PDF. ``render_open_set_figures`` and
``render_closed_set_figures`` turn one scores file (see ``ovfer.protocols.report``) into
all figures that apply to it.
"""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np
from matplotlib import colormaps
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle
from sklearn.metrics import roc_curve

from ..metrics import auroc, confusion, oscr, oscr_curve, oscr_textbook

log = logging.getLogger(__name__)

KNOWN_COLOR, UNKNOWN_COLOR = "#1f77b4", "#d62728"


def _figure(w: float = 5.5, h: float = 4.2) -> Figure:
    fig = Figure(figsize=(w, h), dpi=120, layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def save_figure(fig: Figure, stem: str | Path) -> list[Path]:
    """Write ``<stem>.png`` and ``<stem>.pdf``; returns both paths."""
    stem = Path(stem)
    stem.parent.mkdir(parents=True, exist_ok=True)
    paths = [stem.parent / f"{stem.name}.png", stem.parent / f"{stem.name}.pdf"]
    for p in paths:
        fig.savefig(p)
    return paths


def plot_score_histogram(score_known: np.ndarray, score_unknown: np.ndarray, title: str = "Open-set scores",
                         score_name: str = "open-set score (higher = more known)", bins: int = 30) -> Figure:
    """Overlapping density histograms of known and unknown test scores, sharing bins (HESP Fig. 4)."""
    k, u = np.asarray(score_known, float).ravel(), np.asarray(score_unknown, float).ravel()
    edges = np.histogram_bin_edges(np.concatenate([k, u]), bins=bins)
    fig = _figure()
    ax = fig.add_subplot()
    ax.hist(k, bins=edges, density=True, alpha=0.55, color=KNOWN_COLOR, label=f"known (n={k.size})")
    ax.hist(u, bins=edges, density=True, alpha=0.55, color=UNKNOWN_COLOR, label=f"unknown (n={u.size})")
    ax.set_xlabel(score_name)
    ax.set_ylabel("density")
    ax.set_title(f"{title}\nknown vs unknown scores, AUROC = {auroc(k, u):.2f}", fontsize=10)
    ax.legend(frameon=False)
    return fig


def plot_roc(score_known: np.ndarray, score_unknown: np.ndarray, title: str = "ROC") -> Figure:
    """ROC of known (positive) vs unknown; the legend gives ovfer's AUROC (ties count 0)."""
    k, u = np.asarray(score_known, float).ravel(), np.asarray(score_unknown, float).ravel()
    fpr, tpr, _ = roc_curve(np.r_[np.ones(k.size), np.zeros(u.size)], np.r_[k, u])
    fig = _figure(4.6, 4.4)
    ax = fig.add_subplot()
    ax.plot(fpr, tpr, color=KNOWN_COLOR, lw=2, label=f"AUROC = {auroc(k, u):.2f}")
    ax.plot([0, 1], [0, 1], ls="--", color="grey", lw=1, label="chance")
    ax.set(xlim=(0, 1), ylim=(0, 1.01), aspect="equal",
           xlabel="false positive rate (unknowns accepted)", ylabel="true positive rate (knowns accepted)")
    ax.set_title(f"{title}\nROC: known vs unknown", fontsize=10)
    ax.legend(loc="lower right", frameon=False)
    return fig


def plot_oscr_curve(pred_known: np.ndarray, pred_unknown: np.ndarray, labels: np.ndarray, title: str = "OSCR",
                    score_known: np.ndarray | None = None, score_unknown: np.ndarray | None = None) -> Figure:
    """CCR against FPR (the curve whose area is ``oscr_textbook``); the legend gives both OSCR values."""
    kw = {"known_scores": score_known, "unknown_scores": score_unknown}
    f, c = oscr_curve(pred_known, pred_unknown, labels, **kw)
    ref, book = oscr(pred_known, pred_unknown, labels, **kw), oscr_textbook(pred_known, pred_unknown, labels, **kw)
    acc = float(np.mean(np.argmax(pred_known, 1) == np.asarray(labels)))
    fig = _figure(4.6, 4.4)
    ax = fig.add_subplot()
    ax.plot(f, c, color=KNOWN_COLOR, lw=2, label=f"OSCR = {ref:.2f} (textbook area {book:.2f})")
    ax.axhline(acc, ls=":", color="grey", lw=1, label=f"closed-set accuracy {100 * acc:.1f}%")
    ax.set(xlim=(0, 1), ylim=(0, 1.01), aspect="equal",
           xlabel="false positive rate (unknowns accepted)", ylabel="correct classification rate (knowns)")
    ax.set_title(f"{title}\nCCR vs FPR (OSCR curve)", fontsize=10)
    ax.legend(loc="lower right", frameon=False, fontsize=8)
    return fig


def plot_confusion(cm: np.ndarray, class_names: Sequence[str], title: str = "Confusion matrix") -> Figure:
    """Row-normalised confusion matrix (rows = true class), each cell annotated with its share."""
    cm = np.asarray(cm, float)
    rows = cm.sum(axis=1, keepdims=True)
    norm = np.divide(cm, rows, out=np.zeros_like(cm), where=rows > 0)
    n = len(class_names)
    size = max(4.0, 0.55 * n + 2.0)
    fig = _figure(size + 0.8, size)
    ax = fig.add_subplot()
    im = ax.imshow(norm, cmap="Blues", vmin=0, vmax=1)
    fig.colorbar(im, ax=ax, fraction=0.046, label="share of the true class")
    ax.set_xticks(range(n), class_names, rotation=45, ha="right")
    ax.set_yticks(range(n), class_names)
    font = max(5, 10 - n // 3)
    for i in range(n):
        for j in range(n):
            ax.text(j, i, f"{norm[i, j]:.2f}", ha="center", va="center", fontsize=font,
                    color="white" if norm[i, j] > 0.5 else "black")
    ax.set_xlabel("predicted class")
    ax.set_ylabel("true class")
    ax.set_title(f"{title}\nconfusion matrix (row-normalised, n={int(cm.sum())})", fontsize=10)
    return fig


def _class_colors(n: int) -> list[tuple[float, ...]]:
    """Distinct colours without greys, which are reserved for unknowns."""
    tab10 = [colormaps["tab10"](i) for i in range(10) if i != 7]  # index 7 is grey
    if n <= len(tab10):
        return tab10
    return tab10 + [colormaps["tab20"](i) for i in range(1, 20, 2) if i != 15]  # lighter shades, no grey


def _tsne(x: np.ndarray, seed: int, threads: int | None) -> np.ndarray:
    from sklearn.manifold import TSNE
    from threadpoolctl import threadpool_limits

    perplexity = float(max(1.0, min(30.0, (x.shape[0] - 1) / 3.0)))  # must stay below the sample count
    tsne = TSNE(n_components=2, perplexity=perplexity, init="pca", learning_rate="auto", random_state=seed)
    with threadpool_limits(limits=threads):
        return tsne.fit_transform(x)


def plot_tsne(features_known: np.ndarray, labels_known: np.ndarray, features_unknown: np.ndarray | None,
              class_names: Sequence[str], title: str = "t-SNE of video features", seed: int = 0,
              max_points: int = 1000, threads: int | None = 1) -> Figure:
    """t-SNE of video features, knowns coloured by class, unknowns as grey crosses (HESP Fig. 5).

    Features are L2-normalised first (the methods compare them by cosine); at most
    ``max_points`` samples are embedded (a seeded random subset) to keep CPU time low.
    ``threads`` caps OpenMP threads (None = library default): on a busy 2-core machine the
    default threading made t-SNE of 500 points ~10× slower than one thread (measured).
    """
    fk = np.asarray(features_known, float)
    fu = np.zeros((0, fk.shape[1])) if features_unknown is None else np.asarray(features_unknown, float)
    y = np.asarray(labels_known)
    x = np.concatenate([fk, fu])
    is_unknown = np.r_[np.zeros(len(fk), bool), np.ones(len(fu), bool)]
    if x.shape[0] < 4:
        raise ValueError(f"t-SNE needs at least 4 samples, got {x.shape[0]}")
    rng = np.random.default_rng(seed)
    keep = np.arange(len(x))
    if x.shape[0] > max_points:
        log.info("t-SNE: embedding a random subset of %d of %d samples", max_points, x.shape[0])
        keep = np.sort(rng.choice(x.shape[0], max_points, replace=False))
    x = x[keep] / np.maximum(np.linalg.norm(x[keep], axis=1, keepdims=True), 1e-12)
    emb, is_unknown = _tsne(x, seed, threads), is_unknown[keep]
    y = np.r_[y, np.full(len(fu), -1)][keep]
    fig = _figure(6.0, 4.8)
    ax = fig.add_subplot()
    palette = _class_colors(len(class_names))
    for k, name in enumerate(class_names):
        m = (y == k) & ~is_unknown
        if m.any():
            ax.scatter(emb[m, 0], emb[m, 1], s=14, color=palette[k % len(palette)], label=f"{name} ({int(m.sum())})")
    if is_unknown.any():
        ax.scatter(emb[is_unknown, 0], emb[is_unknown, 1], s=18, marker="x", color="0.55", linewidths=0.9,
                   label=f"unknown ({int(is_unknown.sum())})")
    ax.set_xticks([])
    ax.set_yticks([])
    ax.set_xlabel("t-SNE 1")
    ax.set_ylabel("t-SNE 2")
    ax.set_title(f"{title}\nt-SNE of video features: known classes and unknowns", fontsize=10)
    ax.legend(loc="center left", bbox_to_anchor=(1.0, 0.5), frameon=False, fontsize=8, markerscale=1.5)
    return fig


def plot_prompt_location(frame: np.ndarray, box: tuple[float, float, float, float],
                         title: str = "Visual prompt location") -> Figure:
    """A frame (H, W, 3) uint8 with the visual-prompt window (x0, y0, x1, y1) in pixels drawn on it."""
    img = np.asarray(frame)
    if img.ndim != 3 or img.shape[2] != 3:
        raise ValueError(f"frame must be (H, W, 3), got shape {img.shape}")
    x0, y0, x1, y1 = map(float, box)
    fig = _figure(4.4, 4.6)
    ax = fig.add_subplot()
    ax.imshow(img)
    ax.add_patch(Rectangle((x0 - 0.5, y0 - 0.5), x1 - x0, y1 - y0, fill=False, edgecolor="#ff2d2d", lw=2.0,
                           label=f"prompt {x1 - x0:.0f}×{y1 - y0:.0f} px at ({x0:.0f}, {y0:.0f})"))
    ax.set_xlabel("x (pixels)")
    ax.set_ylabel("y (pixels)")
    ax.set_title(f"{title}\nframe {img.shape[1]}×{img.shape[0]} px", fontsize=10)
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.12), frameon=False, fontsize=8)
    return fig


def render_open_set_figures(scores: Mapping[str, np.ndarray], known: Sequence[str], stem: str | Path,
                            title: str) -> list[Path]:
    """All open-set figures of one scores file: histogram, ROC, OSCR curve, confusion, t-SNE if features."""
    stem = Path(stem)
    pk, pu, y = scores["pred_known"], scores["pred_unknown"], scores["labels"]
    sk = scores["score_known"] if "score_known" in scores else np.max(pk, axis=1)
    su = scores["score_unknown"] if "score_unknown" in scores else np.max(pu, axis=1)
    names = list(known) or [f"class {i}" for i in range(pk.shape[1])]
    paths = save_figure(plot_score_histogram(sk, su, title), stem.parent / f"{stem.name}_hist")
    paths += save_figure(plot_roc(sk, su, title), stem.parent / f"{stem.name}_roc")
    paths += save_figure(plot_oscr_curve(pk, pu, y, title, sk, su), stem.parent / f"{stem.name}_oscr")
    cm = confusion(np.argmax(pk, axis=1), y, len(names))
    fig = plot_confusion(cm, names, f"{title} (known test clips)")
    paths += save_figure(fig, stem.parent / f"{stem.name}_confusion")
    if "features_known" in scores:
        fig = plot_tsne(scores["features_known"], y, scores.get("features_unknown"), names, title)
        paths += save_figure(fig, stem.parent / f"{stem.name}_tsne")
    return paths


def render_closed_set_figures(scores: Mapping[str, np.ndarray], classes: Sequence[str], stem: str | Path,
                              title: str) -> list[Path]:
    """Closed-set figures of one scores file (``pred`` (N, K) or (N,), ``labels``): the confusion matrix."""
    stem = Path(stem)
    pred = np.asarray(scores["pred"])
    k = pred.shape[1] if pred.ndim == 2 else int(max(pred.max(), np.max(scores["labels"])) + 1)
    names = list(classes) or [f"class {i}" for i in range(k)]
    cm = confusion(pred, scores["labels"], len(names))
    return save_figure(plot_confusion(cm, names, title), stem.parent / f"{stem.name}_confusion")

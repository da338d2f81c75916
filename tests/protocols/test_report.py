"""Tests of ovfer.protocols.report (result files, tables, renderers) and ovfer.protocols.plots."""
from __future__ import annotations

import csv
import io
import json

import numpy as np
import pytest

from ovfer.data.splits import get_task
from ovfer.metrics import closed_set_report, open_set_report
from ovfer.protocols import plots
from ovfer.protocols.report import (
    SplitResult,
    load_results,
    openset_table,
    save_result,
    summary_table,
    to_csv,
    to_latex,
    to_markdown,
    write_report,
)

AFEW_TAGS = ["O(5:2)", "O(4:3)", "O(3:4)", "O(2:5)"]  # by increasing openness


def fake_auroc(tag: str, index: int, offset: float) -> float:
    return offset + 10 * AFEW_TAGS.index(tag) + index


def fake_scores(rng: np.random.Generator, k: int, features: bool = False) -> dict[str, np.ndarray]:
    n, m = 30, 12
    y = rng.integers(0, k, n)
    pk = rng.normal(size=(n, k)) + 2.0 * np.eye(k)[y]
    pu = rng.normal(size=(m, k))
    out = {"pred_known": pk, "pred_unknown": pu, "labels": y, "score_known": pk.max(1), "score_unknown": pu.max(1)}
    if features:
        out["features_known"] = rng.normal(size=(n, 8)) + np.eye(k, 8)[y] * 3
        out["features_unknown"] = rng.normal(size=(m, 8))
    return out


@pytest.fixture
def results_dir(tmp_path):
    """afew7: 'alpha' on all 20 splits (scores on 2), 'beta' on 3 splits of O(5:2) (+1 best-on-test),
    a closed-set DFEW result with 2 folds, and one stray non-result JSON."""
    rng = np.random.default_rng(0)
    root = tmp_path / "results"
    task = get_task("afew7")
    for s in task.splits():
        scores = None
        if s.index == 0 and s.openness_tag in ("O(5:2)", "O(2:5)"):
            scores = fake_scores(rng, s.K, features=s.openness_tag == "O(5:2)")
        metrics = open_set_report(**{k: scores[k] for k in ("pred_known", "pred_unknown", "labels")}) if scores else {}
        metrics.update(auroc=fake_auroc(s.openness_tag, s.index, 50.0), oscr=30.0 + s.index)
        save_result(SplitResult.from_split(s, "alpha", metrics, seed=0), root, scores=scores)
        if s.openness_tag == "O(5:2)" and s.index < 3:
            save_result(SplitResult.from_split(s, "beta", {"auroc": 60.0 + s.index, "oscr": 40.0}), root)
        if s.openness_tag == "O(5:2)" and s.index == 0:
            save_result(SplitResult.from_split(s, "beta", {"auroc": 99.0, "oscr": 99.0}, selection="best_on_test"),
                        root)
    classes = ["happiness", "sadness", "neutral"]
    for fold in (1, 2):
        y = rng.integers(0, 3, 20)
        pred = np.eye(3)[y] + rng.normal(scale=0.8, size=(20, 3))
        r = SplitResult(method="alpha", dataset="dfew", metrics=closed_set_report(pred, y, 3), kind="closed_set",
                        protocol="closed_set", fold=fold, classes=classes)
        save_result(r, root, scores={"pred": pred, "labels": y} if fold == 1 else None)
    (root / "notes.json").write_text(json.dumps({"hello": 1}))
    return root


def test_result_files_roundtrip(results_dir):
    results = load_results(results_dir)  # the stray JSON is skipped
    assert len(results) == 20 + 3 + 1 + 2
    p = results_dir / "afew7" / "alpha" / "O(5:2)_0.json"
    assert p.is_file() and p.with_suffix(".npz").is_file()
    data = json.loads(p.read_text())
    for key in ("task", "method", "dataset", "openness_tag", "K", "U", "openness", "split_index", "run_index",
                "known", "unknown", "metrics", "selection", "seed", "config", "timing", "created", "scores_file"):
        assert key in data, key
    data["future_key"] = [1, 2]
    r = SplitResult.from_json(data, path=p)
    assert r.extra == {"future_key": [1, 2]} and r.to_json()["future_key"] == [1, 2]
    assert r.load_scores()["pred_known"].shape[1] == 5
    assert (results_dir / "afew7" / "beta@best_on_test" / "O(5:2)_0.json").is_file()
    assert (results_dir / "closed_set" / "dfew" / "alpha" / "fold_1.json").is_file()
    legacy = {k: v for k, v in data.items() if k != "kind"}
    assert SplitResult.from_json(legacy).kind == "open_set"


def test_save_result_writes_strict_json(tmp_path):
    s = get_task("fusion").splits()[0]
    r = SplitResult.from_split(s, "m", {"auroc": float("nan"), "oscr": np.float32(1.5), "cm": np.eye(2, dtype=int)})
    p = save_result(r, tmp_path)
    assert p == tmp_path / "fusion" / "m" / "O(7:4)_0.json"
    data = json.loads(p.read_text())  # strict JSON: no NaN token
    assert "NaN" not in p.read_text()
    assert data["metrics"] == {"auroc": None, "oscr": 1.5, "cm": [[1, 0], [0, 1]]}


def test_openset_table_rows_columns_means(results_dir):
    t = openset_table(load_results(results_dir), "auroc")
    assert t.columns == AFEW_TAGS + ["mean"]
    assert t.rows == ["alpha", "beta", "beta (best on test)"]
    # alpha at O(4:3): 50 + 10 + mean(0..4) = 62; overall = mean of 52, 62, 72, 82 = 67
    assert t.value("alpha", "O(4:3)") == pytest.approx(62.0)
    assert t.value("alpha", "mean") == pytest.approx(67.0)
    beta = t.cells[t.rows.index("beta")]
    assert beta[0].value == pytest.approx(61.0) and beta[0].n == 3 and beta[0].expected == 5 and beta[0].partial
    assert beta[1].value is None and beta[-1].value == pytest.approx(61.0) and beta[-1].n == 1
    assert t.value("beta (best on test)", "O(5:2)") == 99.0
    assert openset_table(load_results(results_dir), "oscr").value("alpha", "O(2:5)") == pytest.approx(32.0)


def test_renderers(results_dir):
    results = load_results(results_dir)
    blocks = [openset_table(results, "auroc"), openset_table(results, "oscr")]
    md = to_markdown(blocks)
    assert "| alpha | 52.00 | **62.00** | **72.00** | **82.00** | 67.00 |" in md  # best per column in bold
    assert "61.00 (3/5)" in md and "**99.00**" in md and "best on test" in md
    rows = list(csv.DictReader(io.StringIO(to_csv(blocks))))
    assert len(rows) == 2 * 3 * 5
    alpha_mean = [r for r in rows if r["method"] == "alpha" and r["column"] == "mean" and r["metric"] == "auroc"]
    assert float(alpha_mean[0]["value"]) == pytest.approx(67.0)
    tex = to_latex(blocks)
    assert tex.count(r"\begin{tabular}") == 1  # AUROC and OSCR blocks share one tabular
    assert r"\toprule" in tex and r"\bottomrule" in tex and r"\textbf{99.00}" in tex
    assert r"\textit{AUROC}" in tex and r"\textit{OSCR}" in tex
    summary = summary_table(results)
    assert summary.columns == ["afew7", "closed_set/dfew"]
    assert summary.value("alpha", "afew7") == pytest.approx(67.0)
    assert summary.value("alpha", "closed_set/dfew") is not None


def test_table_needs_one_task(results_dir):
    results = load_results(results_dir)
    other = SplitResult.from_split(get_task("mafw11").splits()[0], "alpha", {"auroc": 1.0})
    with pytest.raises(ValueError, match="one task"):
        openset_table(results + [other])
    assert openset_table(results + [other], task="mafw11").rows == ["alpha"]


def _is_png(p):
    return p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and p.stat().st_size > 1000


def _is_pdf(p):
    return p.read_bytes()[:5] == b"%PDF-" and p.stat().st_size > 1000


def test_write_report_files_and_figures(results_dir, tmp_path):
    out = tmp_path / "report"
    paths = write_report(results_dir, out)
    names = {p.name for p in paths}
    for stem in ("afew7_openset", "closed_set_dfew", "summary"):
        for suffix in (".md", ".csv", ".tex"):
            assert stem + suffix in names
    figs = out / "figures" / "afew7" / "alpha"
    expected = [f"O(5:2)_0_{k}" for k in ("hist", "roc", "oscr", "confusion", "tsne")]
    expected += [f"O(2:5)_0_{k}" for k in ("hist", "roc", "oscr", "confusion")]
    for stem in expected:
        assert _is_png(figs / f"{stem}.png"), stem
        assert _is_pdf(figs / f"{stem}.pdf"), stem
    assert not (figs / "O(2:5)_0_tsne.png").exists()  # no features in that scores file
    assert _is_png(out / "figures" / "closed_set_dfew" / "alpha" / "fold_1_confusion.png")
    assert all(p.exists() and p.stat().st_size > 0 for p in paths)
    assert "| alpha |" in (out / "afew7_openset.md").read_text()


def test_prompt_location_figure(tmp_path):
    frame = np.full((112, 112, 3), 128, np.uint8)
    fig = plots.plot_prompt_location(frame, (28, 56, 56, 84), "HESP patch")
    png, pdf = plots.save_figure(fig, tmp_path / "prompt")
    assert _is_png(png) and _is_pdf(pdf)
    with pytest.raises(ValueError, match="H, W, 3"):
        plots.plot_prompt_location(frame[..., 0], (0, 0, 1, 1))

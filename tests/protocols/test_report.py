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


# -- the methods x protocols table -------------------------------------------------------------

def _closed(method, fold, uar, war, protocol="closed_set", kind="closed_set", dataset="mafw", **kw):
    return SplitResult(method=method, dataset=dataset, metrics={"uar": uar, "war": war}, kind=kind,
                       protocol=protocol, fold=fold, **kw)


@pytest.fixture
def cross_dir(tmp_path):
    """Hand-written results on MAFW (and one on DFEW); the expected cells are worked out in the test."""
    root = tmp_path / "cross"
    rs = [_closed("hesp", 1, 50.0, 55.0), _closed("hesp", 2, 60.0, 65.0),
          _closed("hesp", 1, 90.0, 90.0, selection="best_on_test"),
          _closed("clip_zeroshot", 1, 20.0, 25.0),
          _closed("clip_zeroshot", 1, 20.0, 30.0, "zero_shot", "zero_shot"),
          _closed("clip_zeroshot", 2, 22.0, 32.0, "zero_shot", "zero_shot"),
          _closed("clip_arpl", 1, 40.0, 50.0, seed=0), _closed("clip_arpl", 1, 44.0, 50.0, seed=1),
          _closed("clip_arpl", 2, 46.0, 50.0, seed=0),
          _closed("emoclip", 1, 25.0, 33.0, "zero_shot_captions", "zero_shot"),
          _closed("emoclip", 2, 27.0, 35.0, "zero_shot_captions", "zero_shot"),
          _closed("emoclip", 1, 1.0, 1.0, "loco", "zero_shot"),  # not a column of the table
          _closed("zzz_custom", 1, 10.0, 10.0),
          _closed("hesp", 1, 70.0, 75.0, dataset="dfew")]
    for s in get_task("mafw11").splits():
        rs.append(SplitResult.from_split(s, "hesp", {"auroc": 70.0 + s.index, "oscr": 40.0}))
        if s.openness_tag == "O(8:3)" and s.index < 3:
            rs.append(SplitResult.from_split(s, "clip_arpl", {"auroc": 60.0 + s.index, "oscr": 30.0}))
    rs.append(SplitResult.from_split(get_task("compound").splits()[0], "hesp", {"auroc": 1.0, "oscr": 1.0}))
    for r in rs:
        save_result(r, root)
    return root


def test_cross_table_cells_partial_marks_and_notes(cross_dir):
    from ovfer.protocols.cross import cross_table

    t = cross_table(load_results(cross_dir), dataset="mafw")
    assert t.rows == ["HESP", "HESP (best on test)", "Baseline 1", "Baseline 2", "EmoCLIP", "zzz_custom"]
    assert t.columns == ["closed-set UAR", "closed-set WAR", "zero-shot UAR", "zero-shot WAR", "open-set AUROC",
                         "open-set OSCR"]
    expect = {"HESP": [55.0, 60.0, None, None, 72.0, 40.0],
              "HESP (best on test)": [90.0, 90.0, None, None, None, None],
              "Baseline 1": [20.0, 25.0, 21.0, 31.0, None, None],
              "Baseline 2": [44.0, 50.0, None, None, 61.0, 30.0],  # fold 1 = mean of its two seeds
              "EmoCLIP": [None, None, 26.0, 34.0, None, None],
              "zzz_custom": [10.0, 10.0, None, None, None, None]}
    for row, values in expect.items():
        for col, v in zip(t.columns, values):
            assert t.value(row, col) == (pytest.approx(v) if v is not None else None), (row, col)
    cell = t.cells[t.rows.index("Baseline 2")][4]
    assert (cell.n, cell.expected, cell.partial) == (3, 20, True)
    assert t.cells[t.rows.index("Baseline 1")][0].partial and not t.cells[t.rows.index("HESP")][0].partial
    md = to_markdown([t])
    assert "| Baseline 1 | 20.00 (1/2) | 25.00 (1/2) | 21.00 | 31.00 | – | – |" in md
    assert "| EmoCLIP | – | – | **26.00** | **34.00** | – | – |" in md
    notes = "\n".join(t.notes)
    assert len(t.notes) == 7 and "zero-shot UAR: protocol zero_shot (Baseline 1); protocol zero_shot_captions " \
                                  "(EmoCLIP) on mafw" in notes
    assert "open-set AUROC: open-set task mafw11 on mafw" in notes and "closed-set UAR: protocol closed_set" in notes
    assert "Baseline 1 = clip_zeroshot; Baseline 2 = clip_arpl" in notes
    rows = list(csv.DictReader(io.StringIO(to_csv([t]))))
    assert sum(r["metric"] == "note" for r in rows) == 7
    assert "footnotesize" in to_latex([t])
    both = cross_table(load_results(cross_dir))  # two datasets: one column group each
    assert both.columns[:2] == ["dfew: closed-set UAR", "dfew: closed-set WAR"] and len(both.columns) == 12
    assert both.value("HESP", "dfew: closed-set UAR") == pytest.approx(70.0)
    assert both.value("Baseline 1", "dfew: closed-set UAR") is None
    assert cross_table(load_results(cross_dir), task="compound").value("HESP", "open-set AUROC") == 1.0


def test_cross_zero_shot_column_marks_fewer_folds_across_protocols():
    from ovfer.protocols.cross import cross_table

    rs = [_closed("clip_zeroshot", f, 20.0 + f, 30.0, "zero_shot", "zero_shot") for f in (1, 2, 3)]
    rs += [_closed("emoclip", 1, 25.0, 33.0, "zero_shot_captions", "zero_shot"),
           _closed("emoclip", 1, 15.0, 13.0, "zero_shot_captions", "zero_shot", variant="frame_mean")]
    t = cross_table(rs, dataset="mafw")
    assert t.rows == ["Baseline 1", "EmoCLIP", "EmoCLIP [frame_mean]"]
    # one fold of a caption-trained row against three of the direct row: one column, one yardstick
    assert [(c.n, c.expected) for c in (t.cells[i][2] for i in range(3))] == [(3, 3), (1, 3), (1, 3)]
    assert "| EmoCLIP [frame_mean] | – | – | 15.00 (1/3) | 13.00 (1/3) | – | – |" in to_markdown([t])


def test_report_cli_writes_the_cross_table(cross_dir, tmp_path, capsys):
    from ovfer.cli.__main__ import main

    out = tmp_path / "rep"
    assert main(["report", str(cross_dir), "--out", str(out), "--figures", "none", "--cross"]) == 0
    for suffix in (".md", ".csv", ".tex"):
        assert (out / f"cross{suffix}").is_file()
    md = (out / "cross.md").read_text()
    assert "### Methods × protocols (dfew)" in md and "### Methods × protocols (mafw)" in md  # one table each
    assert "| Baseline 2 | 44.00 | 50.00 | – | – | 61.00 (3/20) | 30.00 (3/20) |" in md
    assert "cross.md" in capsys.readouterr().out


def test_seed_and_foldless_result_paths():
    r = SplitResult(method="m", dataset="afew", metrics={}, kind="closed_set", protocol="closed_set", fold=None)
    assert r.relpath().as_posix() == "closed_set/afew/m/all.json"
    r.seed, r.fold = 2, 3
    assert r.relpath().as_posix() == "closed_set/afew/m/fold_3_seed2.json"
    r.seed = 0
    assert r.relpath().as_posix() == "closed_set/afew/m/fold_3.json"


def test_open_set_result_paths_keep_seeds_apart():
    from ovfer.protocols.results import SplitResult

    base = dict(method="hesp", dataset="mafw", metrics={}, task="mafw11", openness_tag="O(8:3)", split_index=2)
    assert SplitResult(**base, seed=0).relpath().name == "O(8:3)_2.json"
    assert SplitResult(**base, seed=3).relpath().name == "O(8:3)_2_seed3.json"


def test_cross_table_at_one_openness(cross_dir):
    from ovfer.protocols.cross import cross_table

    t = cross_table(load_results(cross_dir), dataset="mafw", openness=["O(8:3)"])
    cell = t.cells[t.rows.index("Baseline 2")][4]
    assert cell.value == pytest.approx(61.0) and (cell.n, cell.expected) == (3, 5)
    assert t.value("HESP", "open-set AUROC") == pytest.approx(72.0)
    assert any("at O(8:3)" in n for n in t.notes)

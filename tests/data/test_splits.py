"""Tests of ovfer.data.splits (SPEC §5.3, shared/splits/README.md)."""
from __future__ import annotations

from collections import Counter

import pytest

from ovfer.data.labels import BASIC7, MAFW11, openset_splits_json
from ovfer.data.records import VideoRecord
from ovfer.data.splits import (
    OpenSetSplit,
    apply_split,
    compound_split,
    fusion_split,
    get_task,
    list_tasks,
    official_id_names,
    official_splits,
    openness,
    random_splits,
    random_task,
)

AFEW_OPENNESS = {"O(5:2)": 0.1548, "O(4:3)": 0.2441, "O(3:4)": 0.3453, "O(2:5)": 0.4655}
MAFW_OPENNESS = {"O(8:3)": 0.1472, "O(6:5)": 0.2615, "O(5:6)": 0.3258, "O(3:8)": 0.4778}


@pytest.mark.parametrize("dataset,expected", [("afew", AFEW_OPENNESS), ("dfew", AFEW_OPENNESS),
                                              ("mafw", MAFW_OPENNESS)])
def test_official_lists_counts_and_openness(dataset, expected):
    splits = official_splits(dataset)
    assert len(splits) == 20
    assert Counter(s.openness_tag for s in splits) == {tag: 5 for tag in expected}
    for s in splits:
        assert s.openness == expected[s.openness_tag]
        assert s.K + s.U == (11 if dataset == "mafw" else 7)
    assert [s.run_index for s in splits] == list(range(20))
    assert sorted({s.index for s in splits}) == [0, 1, 2, 3, 4]
    # the first run is the lowest openness, as in the official loop
    assert splits[0].openness == min(expected.values())
    assert len({s.known for s in splits}) == 20


def test_openness_formula():
    for tag, value in {**AFEW_OPENNESS, **MAFW_OPENNESS}.items():
        k, u = map(int, tag[2:-1].split(":"))
        assert openness(k, u) == value
    assert openness(7, 4) == 0.2023 and openness(7, 9) == 0.3386


@pytest.mark.parametrize("dataset", ["afew", "mafw"])
def test_names_follow_sorted_ids_as_in_json(dataset):
    entries = {e["file_index"]: e for e in openset_splits_json()["datasets"][dataset]["splits"]}
    for s in official_splits(dataset):
        assert list(s.known) == entries[s.file_index]["known_names_label_order"]
        assert sorted(s.unknown) == sorted(entries[s.file_index]["unknown_names"])


def test_mafw_label_order_is_not_alphabetical():
    # file_index 19 (run 0): known ids [0, 1, 2, 3, 6, 7, 9, 10]
    s = next(s for s in official_splits("mafw") if s.file_index == 19)
    assert s.known == ("anger", "disgust", "fear", "happiness", "surprise", "contempt", "helplessness",
                       "disappointment")
    assert list(s.known) != sorted(s.known)
    assert s.label_of("contempt") == 5  # position of id 7 in the sorted ids
    mismatching = [s for s in official_splits("mafw") if list(s.known) != sorted(s.known)]
    assert len(mismatching) == 17  # README caveat 1: all but run_index 11, 16, 18
    assert {s.run_index for s in official_splits("mafw")} - {s.run_index for s in mismatching} == {11, 16, 18}


def test_dfew_id_orders():
    assert official_id_names("dfew") == tuple(sorted(BASIC7))  # documented default: alphabetical
    s_alpha = next(s for s in official_splits("dfew") if s.file_index == 19)  # ids [0, 1, 4, 5, 6]
    s_dfew = next(s for s in official_splits("dfew", dfew_id_order="dfew") if s.file_index == 19)
    assert s_alpha.known == ("anger", "disgust", "neutral", "sadness", "surprise")
    assert s_dfew.known == ("happiness", "sadness", "surprise", "disgust", "fear")
    with pytest.raises(ValueError, match="alphabetical"):
        official_id_names("dfew", "bogus")  # type: ignore[arg-type]


def test_fusion_and_compound():
    f = fusion_split()
    assert f.known == BASIC7 and f.unknown == MAFW11[7:] and f.openness_tag == "O(7:4)" and f.openness == 0.2023
    c = compound_split()
    assert c.U == 32 and c.unknown_any_compound and c.known == BASIC7
    c9 = compound_split("basic9")
    assert c9.openness_tag == "O(7:9)" and c9.openness == 0.3386 and not c9.unknown_any_compound
    assert "happiness_surprise" in c9.unknown
    assert compound_split(["anger_disgust"]).U == 1
    with pytest.raises(ValueError, match="multi-label"):
        compound_split(["anger"])


def test_task_registry():
    for name in ("afew7", "mafw11", "dfew7", "fusion", "compound", "synth11", "synth_compound"):
        assert name in list_tasks()
    t = get_task("mafw11")
    assert t.classes == MAFW11 and len(t.splits()) == 20
    assert t.openness_tags() == list(MAFW_OPENNESS)
    assert [s.index for s in t.splits(openness_tags="O(5:6)")] == [0, 1, 2, 3, 4]
    assert len(t.splits(openness_tags=["O(8:3)", "O(3:8)"], indices=[0])) == 2
    with pytest.raises(ValueError, match="valid"):
        t.splits(openness_tags="O(1:1)")
    with pytest.raises(KeyError, match="did you mean 'mafw11'"):
        get_task("mafw1")


def test_synth_tasks():
    t = get_task("synth11")
    splits = t.splits()
    assert t.dataset == "synthfer" and len(splits) == 20
    assert Counter(s.openness_tag for s in splits) == {tag: 5 for tag in MAFW_OPENNESS}
    assert splits == get_task("synth11").splits()  # fixed seed
    for s in splits:  # label order = class-list order
        assert list(s.known) == [c for c in MAFW11 if c in s.known]
    sc = get_task("synth_compound").splits()[0]
    assert sc.unknown_any_compound and sc.known == BASIC7


def test_random_splits_reproducible_and_distinct():
    classes = [f"c{i}" for i in range(9)]
    a = random_splits(classes, 4, n_splits=5, seed=3)
    assert a == random_splits(classes, 4, n_splits=5, seed=3)
    assert a != random_splits(classes, 4, n_splits=5, seed=4)
    assert len({s.known for s in a}) == 5
    assert all(set(s.known) | set(s.unknown) == set(classes) for s in a)
    # splits of one K do not depend on which other K are requested
    t1 = random_task("x", classes, [4], seed=3).splits()
    t2 = random_task("x", classes, [6, 4], seed=3).splits()
    assert [s.known for s in t1] == [s.known for s in t2 if s.K == 4]
    assert [s.run_index for s in t2] == list(range(10))
    with pytest.raises(ValueError, match="distinct"):
        random_splits(["a", "b", "c"], 1, n_splits=4)
    with pytest.raises(ValueError, match="K must be"):
        random_splits(["a", "b"], 2)


def test_split_roundtrip_and_validation():
    s = official_splits("afew")[3]
    assert OpenSetSplit.from_dict(s.to_dict()) == s
    with pytest.raises(ValueError, match="overlap"):
        OpenSetSplit("t", "d", "O(1:1)", 1, 1, openness(1, 1), 0, 0, ("a",), ("a",))


def _rec(i: int, label: tuple[str, ...], split: str) -> VideoRecord:
    return VideoRecord(video=f"/v/{i}.mp4", label=label, dataset="mafw", split=split,  # type: ignore[arg-type]
                       id=str(i))


@pytest.fixture
def records() -> list[VideoRecord]:
    out, i = [], 0
    for split in ("train", "test"):
        for name in MAFW11:
            for _ in range(2):
                out.append(_rec(i, (name,), split))
                i += 1
        for comp in (("anger", "disgust"), ("happiness", "surprise"), ("sadness", "helplessness")):
            out.append(_rec(i, comp, split))
            i += 1
    return out


def test_apply_split_official(records):
    s = next(s for s in official_splits("mafw") if s.file_index == 19)
    d = apply_split(records, s)
    assert all(r.class_name in s.known for r in d.train)
    assert not any(r.class_name in s.unknown or r.is_compound for r in d.train)
    assert len(d.train) == 2 * s.K and len(d.test_known) == 2 * s.K and len(d.test_unknown) == 2 * s.U
    assert d.removed_unknown_train == 2 * s.U and d.dropped == 6  # compound clips are outside mafw11
    assert [s.known[y] for y in d.train_labels] == [r.class_name for r in d.train]
    assert d.test_known_labels == tuple(s.known.index(r.class_name) for r in d.test_known)
    assert all(r.split == "test" for r in d.test_known + d.test_unknown)


def test_apply_split_compound(records):
    d = apply_split(records, compound_split())
    assert len(d.train) == 14 and not any(r.is_compound for r in d.train)
    assert len(d.test_unknown) == 3 and all(r.is_compound for r in d.test_unknown)
    assert d.dropped == 16  # 2 clips of each of the 4 MAFW-only classes, in train and in test
    assert d.removed_unknown_train == 3
    d9 = apply_split(records, compound_split("basic9"))
    assert {r.class_name for r in d9.test_unknown} == {"anger_disgust", "happiness_surprise"}

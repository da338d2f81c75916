"""Dataset adapters: official annotation formats -> VideoRecords (SPEC §2.2)."""
from __future__ import annotations

import logging

import pytest

from ovfer.data.adapters import AnnotationError, create_dataset_records, list_datasets
from ovfer.data.labels import source_order

# --------------------------------------------------------------------------- registry


def test_registry_lists_all_adapters():
    assert {"afew", "dfew", "ferv39k", "folder", "mafw"} <= set(list_datasets())


def test_unknown_dataset_suggests_closest():
    with pytest.raises(KeyError, match="did you mean 'mafw'"):
        create_dataset_records("mafv", annotation="x")


# --------------------------------------------------------------------------- DFEW


def _dfew_csv_tree(root, write_file):
    write_file(root / "label" / "train(single-labeled)" / "set_1.csv",
               ["video_name,label", "1,1", "2,7", "00003,4"])
    write_file(root / "label" / "test(single-labeled)" / "set_1.csv", ["video_name,label", "4,2"])
    write_file(root / "label" / "train(single-labeled)" / "set_2.csv", ["video_name,label", "9,3"])


def test_dfew_csv_labels_follow_dfew_numbering(tmp_path, write_file):
    _dfew_csv_tree(tmp_path, write_file)
    recs = create_dataset_records("dfew", annotation=tmp_path / "label", fold=1, split="train")
    assert [r.label for r in recs] == [("happiness",), ("fear",), ("anger",)]
    assert [r.id for r in recs] == ["1", "2", "00003"]
    assert all(r.dataset == "dfew" and r.fold == 1 and r.split == "train" for r in recs)
    test = create_dataset_records("dfew", annotation=tmp_path / "label", fold=1, split="test")
    assert [(r.id, r.label) for r in test] == [("4", ("sadness",))]


def test_dfew_csv_resolves_frame_dirs_and_zero_padded_files(tmp_path, write_file, touch_clips, caplog):
    _dfew_csv_tree(tmp_path, write_file)
    clips = tmp_path / "clips"
    touch_clips(clips, ["00001/", "00002.mp4"])  # 00003 is missing
    with caplog.at_level(logging.WARNING):
        recs = create_dataset_records("dfew", annotation=tmp_path / "label", fold=1, split="train", video_root=clips)
    assert [r.video for r in recs] == [str(clips / "00001"), str(clips / "00002.mp4")]
    assert recs.missing == ["00003"] and recs.num_missing == 1
    assert "1 of 3 annotated clips have no video" in caplog.text
    with pytest.raises(FileNotFoundError, match="00003"):
        create_dataset_records("dfew", annotation=tmp_path / "label", fold=1, split="train", video_root=clips,
                               strict=True)


def test_dfew_list_format_zero_based(tmp_path, write_file, touch_clips):
    touch_clips(tmp_path, ["videos/a.mp4", "videos/b.mp4", "frames/c/"])
    write_file(tmp_path / "dfew" / "lists" / "set_3_test.txt",
               ["videos/a.mp4 40 0", "videos/b.mp4 12 6", "frames/c 9 3"], final_newline=False)
    recs = create_dataset_records("dfew", annotation=tmp_path / "dfew", fold=3, split="test", video_root=tmp_path)
    assert [r.label[0] for r in recs] == ["happiness", "fear", "anger"]
    assert [r.num_frames for r in recs] == [40, 12, 9]
    assert [r.id for r in recs] == ["a", "b", "c"]
    assert recs[2].video == str(tmp_path / "frames" / "c")


def test_dfew_list_with_foreign_absolute_paths(tmp_path, write_file, touch_clips):
    touch_clips(tmp_path / "mine", ["clip_224/00001/"])
    lst = write_file(tmp_path / "DFEW_set_1_train.txt", ["/data/someone/DFEW/clip_224/00001 16 1"])
    recs = create_dataset_records("dfew", annotation=lst, fold=1, split="train", video_root=tmp_path / "mine")
    assert recs[0].video == str(tmp_path / "mine" / "clip_224" / "00001") and recs[0].label == ("sadness",)


@pytest.mark.parametrize("bad, msg", [
    ("3,x", "not an integer"),
    ("3,8", "out of range"),
    ("3,1,5", "columns"),
])
def test_dfew_csv_bad_line_names_file_and_line(tmp_path, write_file, bad, msg):
    f = write_file(tmp_path / "train(single-labeled)" / "set_1.csv", ["video_name,label", "1,1", bad])
    with pytest.raises(AnnotationError, match=msg) as ei:
        create_dataset_records("dfew", annotation=f, fold=1, split="train")
    assert f"{f}:3:" in str(ei.value) and ei.value.line == 3


def test_dfew_list_malformed_line(tmp_path, write_file):
    f = write_file(tmp_path / "set_1_train.txt", ["a 10 0", "", "b 10 1", "c 10 1 2"])
    with pytest.raises(AnnotationError, match=r"set_1_train.txt:4: expected"):
        create_dataset_records("dfew", annotation=f, fold=1, split="train", format="list")


def test_missing_annotation_names_the_path(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope"):
        create_dataset_records("dfew", annotation=tmp_path / "nope.csv", fold=1)
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="set_1"):
        create_dataset_records("dfew", annotation=tmp_path / "empty", fold=1)


# --------------------------------------------------------------------------- MAFW

MAFW_COMPOUND = [
    "00025.mp4\tanger_disgust\t他皱着眉头，鼻子皱起，嘴角向下。\tHe frowns and wrinkles his nose.",
    "00026.mp4\tsurprise_happiness\t她睁大眼睛，张开嘴笑了。\tShe opens her eyes wide and laughs.",
    "00027.mp4\thelplessness_sadness_anxiety\t他低着头，叹气。\tHe lowers his head and sighs.",
]


def _mafw_compound_file(root, write_file, encoding="gbk"):
    path = root / "Train & Test Set" / "compound" / "with_caption" / "set_2" / "test.txt"
    return write_file(path, MAFW_COMPOUND, encoding=encoding, newline="\r\n")


@pytest.mark.parametrize("encoding", ["gbk", "utf-8"])
def test_mafw_compound_with_captions(tmp_path, write_file, encoding):
    _mafw_compound_file(tmp_path, write_file, encoding)
    recs = create_dataset_records("mafw", annotation=tmp_path, fold=2, split="test", task="compound")
    assert [r.label for r in recs] == [
        ("anger", "disgust"), ("happiness", "surprise"), ("sadness", "anxiety", "helplessness")]
    assert [r.class_name for r in recs][:2] == ["anger_disgust", "happiness_surprise"]
    assert recs[0].caption == "He frowns and wrinkles his nose."
    assert dict(recs[1].meta)["caption_zh"] == "她睁大眼睛，张开嘴笑了。"
    assert [r.id for r in recs] == ["00025", "00026", "00027"]
    assert all(r.fold == 2 and r.split == "test" and r.dataset == "mafw" for r in recs)


def test_mafw_single_no_caption_and_auto_prefers_captions(tmp_path, write_file, touch_clips):
    base = tmp_path / "Train & Test Set" / "single"
    write_file(base / "no_caption" / "set_1" / "train.txt", ["00001.mp4\tanger", "00002.mp4\tcontempt"],
               encoding="gbk")
    write_file(base / "with_caption" / "set_1" / "train.txt",
               ["00001.mp4\tanger\t生气\tAngry face.", "00002.mp4\tcontempt\t轻蔑\tOne lip corner raised."],
               encoding="gbk")
    touch_clips(tmp_path / "clips", ["00001.mp4", "00002.mp4"])
    no_cap = create_dataset_records("mafw", annotation=tmp_path, fold=1, captions="no")
    assert [(r.label, r.caption) for r in no_cap] == [(("anger",), None), (("contempt",), None)]
    auto = create_dataset_records("mafw", annotation=tmp_path, fold=1, video_root=tmp_path / "clips")
    assert [r.caption for r in auto] == ["Angry face.", "One lip corner raised."]
    assert auto[0].video == str(tmp_path / "clips" / "00001.mp4")


def test_mafw_direct_file_and_unknown_label(tmp_path, write_file):
    f = write_file(tmp_path / "train.txt", ["00001.mp4\tanger", "00002.mp4\tboredom"], encoding="gbk")
    with pytest.raises(AnnotationError, match=r"train.txt:2: .*boredom"):
        create_dataset_records("mafw", annotation=f)


def test_mafw_compound_label_in_single_task(tmp_path, write_file):
    f = write_file(tmp_path / "train.txt", ["00001.mp4\tanger_fear"])
    with pytest.raises(AnnotationError, match=r":1: compound label"):
        create_dataset_records("mafw", annotation=f, task="single")


def test_mafw_wrong_encoding_names_line(tmp_path):
    f = tmp_path / "train.txt"
    f.write_bytes("00001.mp4\tanger\n00002.mp4\tfear\n".encode() + b"00003.mp4\tsad\t\x80\xff\n")
    with pytest.raises(AnnotationError, match=r"train.txt:3: cannot decode") as ei:
        create_dataset_records("mafw", annotation=f)
    assert ei.value.line == 3


def test_mafw_wrong_column_count(tmp_path, write_file):
    f = write_file(tmp_path / "train.txt", ["00001.mp4\tanger\ta\tb\tc"], encoding="gbk")
    with pytest.raises(AnnotationError, match=r":1: expected 2 to 4"):
        create_dataset_records("mafw", annotation=f)


def test_mafw_dfer_clip_list_order_by_name(tmp_path, write_file, touch_clips):
    touch_clips(tmp_path, ["f/1/", "f/2/", "f/3/", "f/4/"])
    write_file(tmp_path / "MAFW_set_4_train.txt", ["f/1 30 0", "f/2 30 3", "f/3 30 7", "f/4 30 10"],
               final_newline=False)
    recs = create_dataset_records("mafw", annotation=tmp_path, fold=4, video_root=tmp_path)
    assert [r.label[0] for r in recs] == ["happiness", "anger", "contempt", "disappointment"]
    order = source_order("mafw", "dfer_clip")
    assert [r.label[0] for r in recs] == [order[0], order[3], order[7], order[10]]


# --------------------------------------------------------------------------- FERV39k


def test_ferv39k_list_and_cross_check(tmp_path, write_file, touch_clips, caplog):
    touch_clips(tmp_path / "frames", ["Action/Happy/0001/", "Daily/Angry/0001/"])
    write_file(tmp_path / "FERV39k_test.txt", ["Action/Happy/0001 30 0", "Daily/Angry/0001 20 3"])
    recs = create_dataset_records("ferv39k", annotation=tmp_path, split="test", video_root=tmp_path / "frames",
                                  cross_check="error")
    assert [(r.id, r.label[0]) for r in recs] == [("Action/Happy/0001", "happiness"), ("Daily/Angry/0001", "anger")]
    write_file(tmp_path / "FERV39k_test.txt", ["Action/Happy/0001 30 0", "Daily/Angry/0001 20 1"])
    with pytest.raises(AnnotationError, match=r"FERV39k_test.txt:2: .*disagrees"):
        create_dataset_records("ferv39k", annotation=tmp_path, split="test", video_root=tmp_path / "frames",
                               cross_check="error")
    with caplog.at_level(logging.WARNING):
        recs = create_dataset_records("ferv39k", annotation=tmp_path, split="test", video_root=tmp_path / "frames",
                                      cross_check="warn")
    assert len(recs) == 2 and "disagree" in caplog.text


# --------------------------------------------------------------------------- AFEW


def test_afew_folders(tmp_path, touch_clips):
    touch_clips(tmp_path / "AFEW", ["Train/Angry/001.avi", "Train/Happy/002/", "Train/Happy/notes.txt",
                                    "Val/Sad/003.avi", "Val/Surprise/004.avi"])
    train = create_dataset_records("afew", root=tmp_path / "AFEW", split="train")
    assert [(r.id, r.label) for r in train] == [("001", ("anger",)), ("002", ("happiness",))]
    test = create_dataset_records("afew", root=tmp_path / "AFEW", split="test")
    assert [(r.label[0], r.split) for r in test] == [("sadness", "test"), ("surprise", "test")]


def test_afew_unknown_emotion_folder(tmp_path, touch_clips):
    touch_clips(tmp_path, ["Train/Bored/001.avi"])
    with pytest.raises(AnnotationError, match="Bored"):
        create_dataset_records("afew", root=tmp_path, split="train")


# --------------------------------------------------------------------------- generic folder/CSV


def test_folder_csv_with_header_and_captions(tmp_path, write_file, touch_clips):
    touch_clips(tmp_path, ["v/a.mp4", "v/b.mp4"])
    f = write_file(tmp_path / "data.csv", ["path,label,caption", "v/a.mp4,Happy,smiling", "v/b.mp4,pain,"])
    recs = create_dataset_records("folder", csv_file=f)
    assert [(r.label, r.caption) for r in recs] == [(("happiness",), "smiling"), (("pain",), None)]
    assert recs[0].video == str(tmp_path / "v" / "a.mp4")
    with pytest.raises(AnnotationError, match=r"data.csv:3: unknown label 'pain'"):
        create_dataset_records("folder", csv_file=f, classes=["happiness", "sadness"])


def test_folder_csv_without_header_and_bad_row(tmp_path, write_file, touch_clips):
    touch_clips(tmp_path, ["a.mp4"])
    f = write_file(tmp_path / "d.csv", ["a.mp4,sad", "b.mp4"])
    with pytest.raises(AnnotationError, match=r"d.csv:2: expected 2"):
        create_dataset_records("folder", csv_file=f)


def test_folder_class_subfolders(tmp_path, touch_clips):
    touch_clips(tmp_path / "data", ["train/fear/x.mp4", "train/neutral/y/", "test/fear/z.mp4"])
    recs = create_dataset_records("folder", root=tmp_path / "data", split="train")
    assert [(r.id, r.label[0], r.split) for r in recs] == [("fear/x", "fear", "train"), ("neutral/y", "neutral", "train")]


# --------------------------------------------------------------------------- SynthFER layout


def test_synthfer_layout(tmp_path, write_file, touch_clips):
    out = tmp_path / "synth"
    touch_clips(out / "videos", ["s0001.mp4", "s0002.mp4"])
    for kind in ("with_caption", "no_caption"):
        for k in range(1, 6):
            for part in ("train", "test"):
                lines = ["s0001.mp4\thappiness\t开心\tLip corners pulled up."] if kind == "with_caption" else \
                    ["s0001.mp4\thappiness"]
                write_file(out / "mafw" / "single" / kind / f"set_{k}" / f"{part}.txt", lines, encoding="gbk")
                write_file(out / "mafw" / "compound" / kind / f"set_{k}" / f"{part}.txt",
                           [lines[0].replace("happiness", "happiness_surprise", 1)], encoding="gbk")
    write_file(out / "dfew" / "train(single-labeled)" / "set_1.csv", ["video_name,label", "s0002,2"])
    write_file(out / "dfew" / "test(single-labeled)" / "set_1.csv", ["video_name,label", "s0001,1"])
    write_file(out / "dfew" / "lists" / "set_1_train.txt", ["videos/s0002.mp4 24 1"])
    write_file(out / "dfew" / "lists" / "set_1_test.txt", ["videos/s0001.mp4 24 0"])

    m = create_dataset_records("mafw", annotation=out / "mafw", fold=3, split="test", video_root=out / "videos")
    assert m[0].label == ("happiness",) and m[0].caption == "Lip corners pulled up." and m.num_missing == 0
    c = create_dataset_records("mafw", annotation=out / "mafw", fold=5, task="compound", video_root=out / "videos")
    assert c[0].label == ("happiness", "surprise")
    d = create_dataset_records("dfew", annotation=out / "dfew", fold=1, split="train", video_root=out / "videos")
    assert d[0].video == str(out / "videos" / "s0002.mp4") and d[0].label == ("sadness",)
    dl = create_dataset_records("dfew", annotation=out / "dfew", fold=1, split="test", format="list", video_root=out)
    assert dl[0].video == str(out / "videos" / "s0001.mp4") and dl[0].label == ("happiness",)


def test_uniform_keyword_signature(tmp_path, write_file, touch_clips):
    """Every adapter takes annotation/split/fold/video_root/strict, so configs can call them blindly."""
    touch_clips(tmp_path / "afew", ["Train/Fear/1.avi"])
    afew = create_dataset_records("afew", annotation=tmp_path / "afew", split="train", fold=1, video_root=None,
                                  strict=True)
    assert afew[0].label == ("fear",)
    touch_clips(tmp_path, ["v/a.mp4"])
    f = write_file(tmp_path / "d.csv", ["v/a.mp4,anger"])
    recs = create_dataset_records("folder", annotation=f, split="train", fold=3, video_root=None, strict=False)
    assert recs[0].fold == 3 and recs[0].split == "train"
    with pytest.raises(ValueError, match="one official"):
        create_dataset_records("ferv39k", annotation=tmp_path, split="train", fold=2)

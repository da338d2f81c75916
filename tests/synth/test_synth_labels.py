"""AU prototypes and label sanity: apex AU vectors classify to their own class."""
from __future__ import annotations

import json
from collections import Counter

import numpy as np
import pytest

from ovfer.data.labels import BASIC7, MAFW11
from ovfer.synth import classify_aus, load_synth_config, prototype_vectors
from ovfer.synth.aus import DEFAULT_COMPOUNDS, PROTOTYPES, split_label
from ovfer.synth.timeline import sample_timeline


def test_prototypes_classify_to_themselves():
    for c in MAFW11:
        for v in prototype_vectors(c):
            assert classify_aus(v, MAFW11) == c
    assert set(PROTOTYPES) == set(MAFW11)


def test_emfacs_basic_prototypes():
    assert set(PROTOTYPES["happiness"][0]) == {"AU6", "AU12"}
    assert set(PROTOTYPES["sadness"][0]) == {"AU1", "AU4", "AU15"}
    assert set(PROTOTYPES["surprise"][0]) == {"AU1", "AU2", "AU5", "AU26"}
    assert set(PROTOTYPES["fear"][0]) == {"AU1", "AU2", "AU4", "AU5", "AU7", "AU20", "AU26"}
    assert set(PROTOTYPES["anger"][0]) == {"AU4", "AU5", "AU7", "AU23"}
    assert [set(p) for p in PROTOTYPES["disgust"]] == [{"AU9", "AU15", "AU16"}, {"AU9", "AU10"}]
    assert set(PROTOTYPES["contempt"][0]) == {"AU12U", "AU14U"} and PROTOTYPES["neutral"] == ({},)


def test_compound_blend_differs_from_parents():
    blend = prototype_vectors("fear_surprise")[0]
    for parent in ("fear", "surprise"):
        assert not np.allclose(blend, prototype_vectors(parent)[0])
    assert len(DEFAULT_COMPOUNDS) == 9
    for name in DEFAULT_COMPOUNDS:
        assert len(split_label(name)) == 2 and all(p in BASIC7 for p in split_label(name))


@pytest.mark.parametrize("bad", ["surprise_fear", "joy", "anger_anger", "neutral_sadness"])
def test_bad_labels_raise(bad):
    with pytest.raises(ValueError):
        split_label(bad)


def test_apex_aus_classify_to_their_class():
    cfg = load_synth_config()
    hits, total = Counter(), Counter()
    for c in BASIC7:
        for i in range(40):
            tl = sample_timeline(np.random.default_rng([11, BASIC7.index(c), i]), (c,), cfg)
            total[c] += 1
            hits[c] += classify_aus(tl.apex_aus, BASIC7) == c
    assert sum(hits.values()) / sum(total.values()) >= 0.95, dict(hits)
    assert all(hits[c] / total[c] >= 0.85 for c in BASIC7), dict(hits)


def test_generated_manifest_labels_are_sane(tiny_sets):
    clips = json.loads((tiny_sets[0] / "synthfer.json").read_text(encoding="utf-8"))["clips"]
    basic = [c for c in clips if c["label"] in BASIC7]
    ok = sum(classify_aus(c["apex_aus"], BASIC7) == c["label"] for c in basic)
    assert ok / len(basic) >= 0.95

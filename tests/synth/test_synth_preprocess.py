"""`scene` SynthFER clips go through the real face pipeline and come out as face clips."""
from ovfer.data.cache import ClipCache
from ovfer.data.preprocess import PreprocessConfig, preprocess
from ovfer.synth import generate, load_synth_config


def test_scene_clips_become_face_clips(tmp_path):
    cfg = load_synth_config("scene", ["classes=[happiness,surprise]", "compound_classes=[]", "clips_per_class=2",
                                      "video.frames=6", "folds=2", "framing.empty_prob=0.0"])
    out = generate(cfg, tmp_path / "scene", seed=5, workers=1)
    videos = sorted((out / "videos").glob("*.mp4"))
    assert len(videos) == 4
    pcfg = PreprocessConfig(detect_every=2, output_size=112, min_face_size=20)
    summary = preprocess(videos, tmp_path / "cache", pcfg, workers=0, progress=False)
    assert len(summary.done) == 4 and not summary.no_face and not summary.failed
    cache = ClipCache(tmp_path / "cache")
    for v in videos:
        clip = cache.get(cache.key_for(v, pcfg.settings()))
        assert clip is not None and clip.shape[1:] == (112, 112, 3) and len(clip) >= 5

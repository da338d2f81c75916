"""Values shared by test modules (importable: tests/ is on sys.path via rootdir conftest)."""

TINY_SYNTH = [
    "clips_per_class=5",
    "compound_classes=[fear_surprise,happiness_surprise]",
    "clips_per_compound=3",
    "video.width=64",
    "video.height=64",
    "video.frames=6",
    "video.supersample=2",
]

"""Open-set splits (SPEC §5.3): the official HESP known/unknown lists, seeded random splits, tasks.

A split names its classes; label ids are positions in ``split.known``. For the official
lists that order is the HESP convention, *label = position of the class id in
sorted(known ids)*, so on MAFW a split with ids 7–10 lists e.g. ``(..., "surprise",
"contempt", "helplessness")`` and **not** the alphabetical order the official code used to
build its prompts (``resources/splits/README.md``, caveat 1). Prompts must be built from
``split.known`` in this order.

Id → name mappings (``classes.json``, ``hesp_split_ids_refer_to``):

* AFEW and MAFW: HESP's ids 0–10 are MAFW's order (anger, disgust, fear, happiness, neutral,
  sadness, surprise, contempt, anxiety, helplessness, disappointment); for AFEW this is an
  inference (no AFEW annotation ships with HESP), for MAFW a fact.
* DFEW: **unknown** in the sources — either the alphabetical order of HESP's AFEW/MAFW
  convention or DFEW's own numbering (happiness, sadness, neutral, anger, surprise,
  disgust, fear). ovfer's default is ``"alphabetical"``: it is HESP's convention for the
  other two datasets and the only order under which the official code's alphabetical
  prompt order matches its labels. Pass ``dfew_id_order="dfew"`` for the other reading.

Tasks live in ``TASKS`` (a :class:`~ovfer.registry.Registry`): ``afew7``, ``mafw11``,
``dfew7``, ``fusion``, ``compound`` (official), ``synth11`` and ``synth_compound`` (SynthFER,
SPEC §2.6). ``random_task`` builds the same kind of task for any dataset.
"""
from __future__ import annotations

import itertools
import logging
import math
from dataclasses import asdict, dataclass, field, replace
from typing import Any, Callable, Literal, Sequence

import numpy as np

from ..registry import Registry
from .labels import BASIC7, MAFW11, canonical_classes, classes_json, openset_splits_json
from .records import VideoRecord

log = logging.getLogger(__name__)

OfficialDataset = Literal["afew", "mafw", "dfew"]
DfewIdOrder = Literal["alphabetical", "dfew"]
CompoundChoice = Literal["all", "basic9", "top9"]

#: How HESP's DFEW split ids are read by default (see the module docstring).
DEFAULT_DFEW_ID_ORDER: DfewIdOrder = "alphabetical"
#: Seed of the SynthFER random splits (``synth11``); fixed so that tables are comparable across runs.
SYNTH_SPLIT_SEED = 2024
#: The MAFW opennesses (K known of 11), used for ``synth11`` as for ``mafw11``.
MAFW_K = (8, 6, 5, 3)
#: The AFEW/DFEW opennesses (K known of 7).
AFEW_K = (5, 4, 3, 2)

_OFFICIAL_TASK = {"afew": "afew7", "mafw": "mafw11", "dfew": "dfew7"}


def openness(K: int, U: int) -> float:
    """O(K:U) = 1 − sqrt(K / (K + U)), rounded to 4 decimals (SPEC §5.3)."""
    if K < 1 or U < 0:
        raise ValueError(f"openness needs K >= 1 and U >= 0, got K={K}, U={U}")
    return round(1.0 - math.sqrt(K / (K + U)), 4)


def openness_tag(K: int, U: int) -> str:
    return f"O({K}:{U})"


@dataclass(frozen=True)
class OpenSetSplit:
    """One known/unknown partition. ``known`` is in label order: label id = position."""

    task: str
    dataset: str
    openness_tag: str
    K: int
    U: int
    openness: float
    index: int  # position within its openness group (0-4 for the official lists)
    run_index: int  # position in the run order of the whole task (official: 19 - file_index)
    known: tuple[str, ...]
    unknown: tuple[str, ...]
    unknown_any_compound: bool = False  # every multi-label clip counts as unknown, listed or not
    source: Literal["official", "random", "fixed"] = "official"
    file_index: int | None = None  # position in the official split.py list

    def __post_init__(self) -> None:
        problems = []
        if len(self.known) != self.K or len(set(self.known)) != self.K:
            problems.append(f"known must hold K={self.K} distinct names, got {self.known}")
        if len(self.unknown) != self.U or len(set(self.unknown)) != self.U:
            problems.append(f"unknown must hold U={self.U} distinct names, got {self.unknown}")
        if set(self.known) & set(self.unknown):
            problems.append(f"known and unknown overlap: {sorted(set(self.known) & set(self.unknown))}")
        if self.openness_tag != openness_tag(self.K, self.U) or self.openness != openness(self.K, self.U):
            problems.append(f"openness {self.openness_tag}={self.openness} does not match K={self.K}, U={self.U}")
        if problems:
            raise ValueError(f"invalid split {self.task}/{self.openness_tag}_{self.index}: " + "; ".join(problems))

    @property
    def name(self) -> str:
        """``O(K:U)_index``: the stem of this split's result file."""
        return f"{self.openness_tag}_{self.index}"

    def label_of(self, record: VideoRecord | str) -> int:
        """Label id of a known clip (or class name): its position in ``known``."""
        name = record if isinstance(record, str) else record.class_name
        if name not in self.known:
            raise ValueError(f"class '{name}' is not known in split {self.task}/{self.name}; known: {list(self.known)}")
        return self.known.index(name)

    def is_known(self, record: VideoRecord) -> bool:
        return not record.is_compound and record.class_name in self.known

    def is_unknown(self, record: VideoRecord) -> bool:
        return record.class_name in self.unknown or (self.unknown_any_compound and record.is_compound)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["known"], d["unknown"] = list(self.known), list(self.unknown)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "OpenSetSplit":
        d = dict(d)
        d["known"], d["unknown"] = tuple(d["known"]), tuple(d["unknown"])
        return cls(**d)


def _make(task: str, dataset: str, known: Sequence[str], unknown: Sequence[str], index: int, run_index: int,
          **kw: Any) -> OpenSetSplit:
    K, U = len(known), len(unknown)
    return OpenSetSplit(task=task, dataset=dataset, openness_tag=openness_tag(K, U), K=K, U=U,
                        openness=openness(K, U), index=index, run_index=run_index,
                        known=tuple(known), unknown=tuple(unknown), **kw)


# ---- official lists ------------------------------------------------------------------------

def official_id_names(dataset: OfficialDataset, dfew_id_order: DfewIdOrder = DEFAULT_DFEW_ID_ORDER) -> tuple[str, ...]:
    """Class name of each HESP split id of ``dataset`` (index = id).

    For DFEW the packaged ``classes.json`` records ``hesp_split_ids_refer_to`` as order
    "unknown" (status "unknown"), with two candidates: ``hesp_candidate_alphabetical`` and
    DFEW's 1-based numbering minus one; ``dfew_id_order`` picks one (default alphabetical,
    see the module docstring).
    """
    ds = dataset.lower()
    if ds == "dfew":
        if dfew_id_order == "alphabetical":
            return tuple(sorted(canonical_classes("dfew")))
        if dfew_id_order == "dfew":
            return canonical_classes("dfew")
        raise ValueError(f"dfew_id_order must be 'alphabetical' or 'dfew', got '{dfew_id_order}'")
    if ds in ("afew", "mafw"):
        entry = classes_json()["datasets"][ds]
        canon = entry["classes"]
        order = entry["orders"][entry["hesp_split_ids_refer_to"]["order"]]
        return tuple(canon[i] for i in order["to_canonical"])
    raise ValueError(f"no official HESP splits for dataset '{dataset}'; valid: afew, mafw, dfew")


def official_splits(dataset: OfficialDataset, dfew_id_order: DfewIdOrder = DEFAULT_DFEW_ID_ORDER) -> list[OpenSetSplit]:
    """The 20 official known-class lists of ``dataset``, in the official run order.

    ``known`` follows the sorted ids (HESP label convention); ``unknown`` likewise. The index
    within an openness group follows the run order (index 0 = the group's first run).
    """
    ds = dataset.lower()
    names = official_id_names(ds, dfew_id_order)  # type: ignore[arg-type]
    entries = sorted(openset_splits_json()["datasets"][ds]["splits"], key=lambda e: e["run_index"])
    seen: dict[str, int] = {}
    out = []
    for e in entries:
        tag = e["openness_tag"]
        idx = seen.get(tag, 0)
        seen[tag] = idx + 1
        split = _make(_OFFICIAL_TASK[ds], ds, [names[i] for i in e["known_sorted"]],
                      [names[i] for i in sorted(e["unknown"])], idx, e["run_index"], file_index=e["file_index"])
        if split.openness != e["openness"]:
            raise RuntimeError(f"openness of {ds} split {e['file_index']} disagrees with the packaged JSON")
        out.append(split)
    return out


def fusion_split() -> OpenSetSplit:
    """AFEW+MAFW fusion (HESP task 3): 7 basic known, the 4 MAFW-only classes unknown.

    The paper prints O(7:5) = 0.24 but names 4 unknown classes; ovfer reports the computed
    O(7:4) = 0.2023 (SPEC §5.3).
    """
    t = openset_splits_json()["tasks"]["fusion_afew_mafw"]
    return _make("fusion", "afew+mafw", t["known_names"], t["unknown_names"], 0, 0, source="fixed")


def compound_classes(choice: CompoundChoice = "all") -> tuple[str, ...]:
    """MAFW compound class lists from ``classes.json``: all 32, the 9-class candidate, or the top 9."""
    entry = classes_json()["datasets"]["mafw_compound"]
    cand = entry["hesp_compound_unknown_classes"]
    table = {"all": entry["classes"], "basic9": cand["candidate_basic_components_only"],
             "top9": cand["alternative_top9_by_count"]}
    if choice not in table:
        raise ValueError(f"unknown compound class choice '{choice}'; valid: {sorted(table)}")
    return tuple(table[choice])


def compound_split(unknown_classes: Sequence[str] | CompoundChoice | None = None, task: str = "compound",
                   dataset: str = "mafw") -> OpenSetSplit:
    """MAFW compound task (HESP task 4): 7 basic single-label classes known, compound clips unknown.

    Default (``None`` or ``"all"``): every compound clip is unknown, U = the 32 MAFW compound
    classes. ``"basic9"`` is the 9-class candidate (compounds of basic emotions only,
    O(7:9) = 0.3386 as the paper prints; an inference), ``"top9"`` the 9 most frequent, or
    any list of compound names (then only those clips are unknown test data).
    """
    if unknown_classes is None or isinstance(unknown_classes, str):
        choice = unknown_classes or "all"
        names = compound_classes(choice)  # type: ignore[arg-type]
        any_compound = choice == "all"
    else:
        names, any_compound = tuple(unknown_classes), False
        bad = [n for n in names if "_" not in n]
        if bad:
            raise ValueError(f"compound unknown classes must be multi-label names like 'anger_disgust', got {bad}")
    return _make(task, dataset, BASIC7, names, 0, 0, unknown_any_compound=any_compound, source="fixed")


# ---- seeded random splits --------------------------------------------------------------------

def random_splits(classes: Sequence[str], K: int, n_splits: int = 5, seed: int = 0, task: str = "random",
                  dataset: str = "custom", run_offset: int = 0) -> list[OpenSetSplit]:
    """``n_splits`` distinct known sets of size K drawn from ``classes``, reproducible from ``seed``.

    The generator is seeded with (seed, K, len(classes)), so the splits of one K do not change
    when other K are requested. Known and unknown names keep the order of ``classes`` (the
    analogue of sorted ids).
    """
    classes = tuple(classes)
    n = len(classes)
    if len(set(classes)) != n:
        raise ValueError(f"classes contain duplicates: {classes}")
    if not 1 <= K < n:
        raise ValueError(f"K must be in [1, {n - 1}] for {n} classes (at least one unknown), got {K}")
    total = math.comb(n, K)
    if n_splits > total:
        raise ValueError(f"only {total} distinct splits of {n} classes with K={K}; asked for {n_splits}")
    rng = np.random.default_rng([seed, K, n])
    if total <= 20000:
        combos = list(itertools.combinations(range(n), K))
        picked = [combos[i] for i in rng.choice(total, size=n_splits, replace=False)]
    else:
        chosen: dict[tuple[int, ...], None] = {}
        while len(chosen) < n_splits:
            chosen.setdefault(tuple(sorted(rng.choice(n, size=K, replace=False).tolist())), None)
        picked = list(chosen)
    out = []
    for i, ids in enumerate(picked):
        known = [classes[j] for j in sorted(ids)]
        unknown = [c for c in classes if c not in known]
        out.append(_make(task, dataset, known, unknown, i, run_offset + i, source="random"))
    return out


# ---- tasks ------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Task:
    """A named open-set task: its dataset, full class list and its splits."""

    name: str
    dataset: str
    classes: tuple[str, ...]
    build: Callable[[], list[OpenSetSplit]] = field(repr=False, compare=False)
    description: str = ""

    def splits(self, openness_tags: Sequence[str] | str | None = None,
               indices: Sequence[int] | int | None = None) -> list[OpenSetSplit]:
        """The task's splits in run order, optionally only some opennesses / group indices."""
        out = self.build()
        if openness_tags is not None:
            tags = [openness_tags] if isinstance(openness_tags, str) else list(openness_tags)
            valid = self.openness_tags()
            bad = [t for t in tags if t not in valid]
            if bad:
                raise ValueError(f"task '{self.name}' has no openness {bad}; valid: {valid}")
            out = [s for s in out if s.openness_tag in tags]
        if indices is not None:
            idx = [indices] if isinstance(indices, int) else list(indices)
            out = [s for s in out if s.index in idx]
        return out

    def openness_tags(self) -> list[str]:
        """Distinct openness tags, by increasing openness."""
        seen = {s.openness_tag: s.openness for s in self.build()}
        return sorted(seen, key=lambda t: seen[t])


TASKS: Registry[Callable[[], Task]] = Registry("task")


def get_task(name: str) -> Task:
    """The registered task ``name``; an unknown name lists the valid ones."""
    return TASKS.get(name)()


def list_tasks() -> list[str]:
    return TASKS.names()


def random_task(name: str, classes: Sequence[str], K_list: Sequence[int], seed: int = 0, n_splits: int = 5,
                dataset: str = "custom", register: bool = False) -> Task:
    """A task of seeded random splits (``n_splits`` per K) over any class list; optionally registered."""
    classes, ks = tuple(classes), tuple(K_list)

    def build() -> list[OpenSetSplit]:
        out: list[OpenSetSplit] = []
        for k in ks:
            out += random_splits(classes, k, n_splits, seed, name, dataset, run_offset=len(out))
        return out

    task = Task(name, dataset, classes, build, f"seeded random splits (seed {seed}), K in {list(ks)}")
    if register:
        TASKS.register(name)(lambda: task)
    return task


def _official_task(dataset: OfficialDataset) -> Callable[[], Task]:
    def factory() -> Task:
        return Task(_OFFICIAL_TASK[dataset], dataset, canonical_classes(dataset),
                    lambda: official_splits(dataset), f"HESP official {dataset.upper()} splits (20)")
    return factory


TASKS.register("afew7")(_official_task("afew"))
TASKS.register("mafw11")(_official_task("mafw"))
TASKS.register("dfew7")(_official_task("dfew"))


@TASKS.register("fusion")
def _fusion_task() -> Task:
    return Task("fusion", "afew+mafw", MAFW11, lambda: [fusion_split()], "AFEW+MAFW, 7 basic known, 4 unknown")


@TASKS.register("compound")
def _compound_task() -> Task:
    classes = BASIC7 + compound_classes("all")
    return Task("compound", "mafw", classes, lambda: [compound_split()], "MAFW: 7 basic known, compound unknown")


@TASKS.register("synth11")
def _synth11_task() -> Task:
    return random_task("synth11", MAFW11, MAFW_K, seed=SYNTH_SPLIT_SEED, dataset="synthfer")


@TASKS.register("synth_compound")
def _synth_compound_task() -> Task:
    # SynthFER blends of two basic prototypes correspond to the basic-only candidate; every
    # compound clip the generator makes is unknown even if its blend is not listed.
    def build() -> list[OpenSetSplit]:
        s = compound_split("basic9", task="synth_compound", dataset="synthfer")
        return [replace(s, unknown_any_compound=True)]

    return Task("synth_compound", "synthfer", BASIC7 + compound_classes("basic9"), build,
                "SynthFER: 7 basic single-label known, compound clips unknown")


# ---- applying a split to records -----------------------------------------------------------

@dataclass(frozen=True)
class SplitData:
    """Records of one split: train (known classes only) and the known/unknown test sets."""

    split: OpenSetSplit
    train: tuple[VideoRecord, ...]
    train_labels: tuple[int, ...]
    test_known: tuple[VideoRecord, ...]
    test_known_labels: tuple[int, ...]
    test_unknown: tuple[VideoRecord, ...]
    removed_unknown_train: int = 0  # unknown-class clips taken out of training (SPEC §5.3)
    dropped: int = 0  # clips of classes outside this task (e.g. compound clips in mafw11)

    def counts(self) -> dict[str, int]:
        return {"train": len(self.train), "test_known": len(self.test_known), "test_unknown": len(self.test_unknown),
                "removed_unknown_train": self.removed_unknown_train, "dropped": self.dropped}


def _ensure(cond: bool, msg: str) -> None:
    if not cond:  # not `assert`: these guarantees must hold under python -O too
        raise AssertionError(msg)


def apply_split(records: Sequence[VideoRecord], split: OpenSetSplit, train_split: str | Sequence[str] = "train",
                test_split: str | Sequence[str] = "test") -> SplitData:
    """Divide records by a split: no clip of an unknown class (and no multi-label clip) is trained on.

    ``train_split``/``test_split`` name the record ``split`` values used for each side (AFEW's
    "test" is its Val set: pass ``test_split="val"`` if the adapter keeps that name).
    """
    tr = {train_split} if isinstance(train_split, str) else set(train_split)
    te = {test_split} if isinstance(test_split, str) else set(test_split)
    train, test_known, test_unknown = [], [], []
    removed = dropped = 0
    for r in records:
        known, unknown = split.is_known(r), split.is_unknown(r)
        if r.split in tr:
            if known:
                train.append(r)
            elif unknown:
                removed += 1
            else:
                dropped += 1
        elif r.split in te:
            if known:
                test_known.append(r)
            elif unknown:
                test_unknown.append(r)
            else:
                dropped += 1
    unknown_set = set(split.unknown)
    _ensure(not any(r.class_name in unknown_set or r.is_compound for r in train),
            f"split {split.name}: a clip of an unknown or compound class reached training")
    _ensure(not {r.id for r in test_known} & {r.id for r in test_unknown},
            f"split {split.name}: a clip is both known and unknown test data")
    data = SplitData(split, tuple(train), tuple(split.label_of(r) for r in train), tuple(test_known),
                     tuple(split.label_of(r) for r in test_known), tuple(test_unknown), removed, dropped)
    _ensure(all(0 <= y < split.K for y in data.train_labels + data.test_known_labels), "label out of range")
    log.info("split %s/%s: %s", split.task, split.name, data.counts())
    if not train:
        log.warning("split %s/%s has no training clip (record split names seen: %s)", split.task, split.name,
                    sorted({r.split for r in records}))
    return data

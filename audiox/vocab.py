"""Concept vocabularies for concept-based explanations (seed paper 000): baseline, pruned, clustered.

A concept decomposition explains a CLAP audio embedding as a sparse, non-negative mix of the
text embeddings of *concept words*. Which words are on offer shapes every explanation, so the
paper (Zhang et al., 2025, after SpLiCE) compares three vocabularies built from one tag list
(FSD50K's tags there; the project's own ``data/vocab/sound_tags.txt`` here):

* **baseline**: the tag list as it is (lower-cased, duplicates dropped, order kept: most
  frequent first in a real tag list);
* **pruned**: numbers and single letters removed, spelling variants and misspellings of an
  earlier (more frequent) tag removed, plural and -ing forms merged into their root
  (:func:`prune` documents each rule);
* **clustered**: k-means on the backbone's text embeddings of the baseline tags, keeping the tag
  nearest each centroid (:func:`cluster`). It depends on the backbone, so it is stored per
  backbone; tags the backbone cannot represent (:func:`representability`) are left out of it.

The shipped files are built by ``python scripts/make_vocabularies.py`` and read back with
:func:`load_vocabulary`; a notebook loads one with a single call:

>>> words = load_vocabulary("pruned")
>>> len(words) > 500, "siren" in words, "sirens" in words
(True, True, False)
>>> prune(["bird", "birds", "knocking", "knock", "808", "x", "whistle", "wistle"])
['bird', 'knock', 'whistle']
"""

from __future__ import annotations

import functools
import re
from pathlib import Path

import numpy as np
import torch

from .config import DATA_DIR

VOCABULARIES = ("baseline", "pruned", "clustered")
#: Vocabularies built from the backbone's text embeddings; the others are backbone-independent.
BACKBONE_DEPENDENT = ("clustered",)
VOCAB_DIR = DATA_DIR / "vocab"
#: The project's own sound-tag list, written for the course (not downloaded), most common first.
SOUND_TAGS = VOCAB_DIR / "sound_tags.txt"
BUILD_COMMAND = "python scripts/make_vocabularies.py"

#: Words that count as misspellings must be at least this long: in short words one edit makes
#: another real word (horse/hoarse, steam/stream), in longer ones it mostly makes a typo.
MIN_MISSPELLING_LENGTH = 6
#: A tag is *representable* by a hashed-n-gram text encoder when more than this fraction of its
#: features were seen in training, so learned rows outweigh random ones (:func:`representability`).
FEATURE_COVERAGE_THRESHOLD = 0.5


# ---- reading tag lists ------------------------------------------------------------------------

def read_tag_list(path) -> list[str]:
    """Tags from a text file, one per line: stripped, lower-cased; blank lines and ``#`` comments skipped.

    Raises ``ValueError`` when the file is missing or holds no tag.

    >>> import tempfile, os
    >>> with tempfile.NamedTemporaryFile("w", suffix=".txt", delete=False) as f:
    ...     _ = f.write("# my tags\\nDog\\n\\n  rain  \\n")
    >>> read_tag_list(f.name)
    ['dog', 'rain']
    >>> os.remove(f.name)
    """
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"tag list {path} does not exist; pass a text file with one tag per line.")
    tags = [line.strip().lower() for line in path.read_text(encoding="utf-8").splitlines()]
    tags = [tag for tag in tags if tag and not tag.startswith("#")]
    if not tags:
        raise ValueError(f"tag list {path} holds no tags (only blank lines or # comments); add one tag per line.")
    return tags


def deduplicate(words) -> list[str]:
    """The baseline vocabulary: words lower-cased and stripped, blanks and repeats dropped, first occurrence kept.

    >>> deduplicate(["Rain", "bird", "rain ", "", "bird"])
    ['rain', 'bird']
    """
    return list(dict.fromkeys(w.strip().lower() for w in words if w.strip()))


def ground_truth_words() -> list[str]:
    """The words the course's ground truth is written in: SynthSounds attribute words and the spoken keywords.

    Notebooks check whether a clip's concepts name its own attributes ("ringing", "pulsing"), so
    pruning never merges these away (``ringing`` stands for ``ring`` and ``rings``, not the
    other way round). Class names need no protection: their roots name them (``footstep``).

    >>> "ringing" in ground_truth_words(), "yes" in ground_truth_words()
    (True, True)
    """
    from .data.speech import KEYWORDS
    from .data.synth import ATTRIBUTE_WORDS

    return sorted(set(ATTRIBUTE_WORDS) | set(KEYWORDS))


# ---- pruning ------------------------------------------------------------------------------------

def _letters(word: str) -> str:
    # "foot-steps", "foot steps" and "footsteps" are one tag written three ways
    return re.sub(r"[^a-z]", "", word)


def _root_candidates(key: str) -> list[str]:
    """Possible roots of a plural (-s, -es, -ies, -ves) or -ing form, most likely first."""
    candidates = []
    if key.endswith("s") and not key.endswith(("ss", "us", "is")):  # glass, bus, chaos stay whole
        candidates.append(key[:-1])  # birds -> bird, chimes -> chime
        if key.endswith("es"):
            candidates.append(key[:-2])  # crashes -> crash, buses -> bus
        if key.endswith("ies"):
            candidates.append(key[:-3] + "y")  # flies -> fly
        if key.endswith("ves"):
            candidates += [key[:-3] + "f", key[:-3] + "fe"]  # wolves -> wolf, knives -> knife
    if key.endswith("ing") and len(key) >= 6:  # a 3-letter stem at least: ring, sing, thing stay whole
        stem = key[:-3]
        candidates += [stem, stem + "e"]  # knocking -> knock, crackling -> crackle
        if len(stem) >= 2 and stem[-1] == stem[-2]:
            candidates.append(stem[:-1])  # dripping -> drip
    return candidates


def root(word: str, lexicon) -> str:
    """The root of ``word`` in ``lexicon``: plural and -ing endings stripped while that leaves a word of the lexicon.

    A small rule set, not a lemmatiser: none is in the course environment (nltk is not a
    dependency, and its WordNet lemmatiser needs a separate data download), and a tag list only
    needs forms merged *when both are in it*, which the lexicon check guarantees. Like any
    lemmatiser without context, it merges a few words whose root is another word ("parking"
    joins "park", "news" joins "new"); :func:`explain_pruning` lists every merge to check.

    >>> lexicon = {"knock", "knocking", "knocks", "drip", "dripping", "recording", "recordings", "record", "glass"}
    >>> root("knocks", lexicon), root("dripping", lexicon), root("recordings", lexicon), root("glass", lexicon)
    ('knock', 'drip', 'record', 'glass')
    """
    current = word
    while True:
        for candidate in _root_candidates(current):
            if candidate in lexicon:
                current = candidate
                break
        else:
            return current


def is_misspelling(word: str, of: str) -> bool:
    """Whether ``word`` is a misspelling of ``of``: one letter dropped, added or two neighbours swapped.

    Both at least :data:`MIN_MISSPELLING_LENGTH` letters with the same first letter (typos rarely
    hit the first letter, and "bright" is no misspelling of "right"). Not counted: a *substituted*
    letter, which in sound words mostly makes another real word (shatter/shutter,
    bubbling/babbling, clatter/clutter), and a letter added or dropped at the *end*, which makes
    a derived word (harmonic/harmonica, crunch/crunchy).

    >>> is_misspelling("wistle", "whistle"), is_misspelling("enigne", "engine"), is_misspelling("theatre", "theater")
    (True, True, True)
    >>> is_misspelling("harmonica", "harmonic"), is_misspelling("shutter", "shatter"), is_misspelling("bright", "right")
    (False, False, False)
    """
    if min(len(word), len(of)) < MIN_MISSPELLING_LENGTH or word[0] != of[0] or word == of:
        return False
    if abs(len(word) - len(of)) == 1:
        longer, shorter = (word, of) if len(word) > len(of) else (of, word)
        i = next((i for i, (a, b) in enumerate(zip(longer, shorter)) if a != b), len(shorter))
        return i < len(shorter) and longer[i + 1:] == shorter[i:]
    if len(word) == len(of):
        diff = [i for i, (a, b) in enumerate(zip(word, of)) if a != b]
        return len(diff) == 2 and diff[1] == diff[0] + 1 and (word[diff[0]], word[diff[1]]) == (of[diff[1]], of[diff[0]])
    return False


def explain_pruning(words, keep=()) -> dict[str, str]:
    """Every word :func:`prune` removes, with the reason, in the order of the deduplicated list.

    The rules, applied to the deduplicated list in order (earlier = more frequent):

    1. *numbers*: any tag containing a digit ("808", "2", "44100", "16-bit", "mp3");
    2. *single letters*: tags with at most one letter ("a", "x");
    3. *one root*: tags are compared by their letters only, so spelling variants ("foot-steps",
       "hi-hat"/"hihat") meet, and plural and -ing forms are reduced to their root (:func:`root`);
       each group keeps one tag: a word of ``keep`` if it has one, else its root (the earliest
       spelling of it);
    4. *misspellings*: an *unattested* tag that is a misspelling (:func:`is_misspelling`) of an
       earlier (more frequent) tag joins that tag's group ("wistle" -> "whistle"). A tag is
       attested, so no typo, when the list holds another form of it (its plural, -ing form or
       spelling variant, or another form of the same unlisted root: "braking" next to "brakes")
       or a compound tag with it ("garbage" in "garbage-truck"): typos rarely come with a family.
       Only the order tells a typo from the word it misspells, so a list must come most frequent
       first, as tag counts give it.

    Words in ``keep`` are never removed.

    >>> explain_pruning(["rings", "ring", "ringing", "hi-hat", "hihat", "2"], keep=["ringing"])
    {'rings': "plural/-ing form of 'ringing'", 'ring': "plural/-ing form of 'ringing'", 'hihat': "spelling variant of 'hi-hat'", '2': 'number'}
    >>> explain_pruning(["raindrops", "raindrop", "raindorps", "barking", "braking", "brakes"])
    {'raindrops': "plural/-ing form of 'raindrop'", 'raindorps': "misspelling of 'raindrops' (kept as 'raindrop')"}
    """
    words, keep = deduplicate(words), set(keep)
    removed = {}
    for word in words:
        if word in keep:
            continue
        if any(c.isdigit() for c in word):
            removed[word] = "number"
        elif len(_letters(word)) <= 1:
            removed[word] = "single letter" if _letters(word) else "no letters"
    candidates = [w for w in words if w not in removed]
    keys = {w: _letters(w) for w in candidates}
    lexicon = set(keys.values())
    group_of = {w: root(keys[w], lexicon) for w in candidates}

    possible_roots = {w: {keys[w], *_root_candidates(keys[w])} for w in candidates}
    root_count: dict[str, int] = {}
    for roots in possible_roots.values():
        for r in roots:
            root_count[r] = root_count.get(r, 0) + 1
    in_compounds = {_letters(part) for w in candidates for part in re.split(r"[-\s_]+", w) if part != w}

    def attested(word):
        return keys[word] in in_compounds or any(root_count[r] > 1 for r in possible_roots[word])

    # an unattested tag misspells an earlier (more frequent) tag
    position = {w: i for i, w in enumerate(candidates)}
    by_start_and_length: dict[tuple[str, int], list[str]] = {}  # one edit apart needs these to match
    for word in candidates:
        if keys[word]:
            by_start_and_length.setdefault((keys[word][0], len(keys[word])), []).append(word)
    misspells = {}
    for word in candidates:
        key = keys[word]
        if not key or word in keep or attested(word):
            continue
        near = [w for n in (len(key) - 1, len(key), len(key) + 1) for w in by_start_and_length.get((key[0], n), [])]
        near = [w for w in near if position[w] < position[word] and is_misspelling(key, keys[w])]
        if near:
            misspells[word] = min(near, key=position.get)
            group_of[word] = group_of[misspells[word]]

    members: dict[str, list[str]] = {}
    for word in candidates:
        members.setdefault(group_of[word], []).append(word)
    for group, group_words in members.items():
        protected = [w for w in group_words if w in keep]
        representative = (protected or [w for w in group_words if keys[w] == group] or group_words)[0]
        for word in group_words:
            if word == representative or word in keep:
                continue
            if word in misspells:
                target = misspells[word]
                kept_as = f" (kept as {representative!r})" if target != representative else ""
                removed[word] = f"misspelling of {target!r}{kept_as}"
            elif keys[word] == keys[representative]:
                removed[word] = f"spelling variant of {representative!r}"
            else:
                removed[word] = f"plural/-ing form of {representative!r}"
    return {w: removed[w] for w in words if w in removed}


def prune(words, keep=()) -> list[str]:
    """The pruned vocabulary: the deduplicated ``words`` minus what :func:`explain_pruning` removes, order kept.

    >>> prune(["birds", "bird", "crackling", "crackle", "foot-steps", "footsteps", "footstep"], keep=["crackling"])
    ['bird', 'crackling', 'footstep']
    """
    removed = explain_pruning(words, keep)
    return [w for w in deduplicate(words) if w not in removed]


# ---- what a backbone can represent ---------------------------------------------------------

@functools.lru_cache(maxsize=1)
def tiny_clap_training_text(n_per_class: int = 20) -> tuple[str, ...]:
    """Captions tiny-clap was trained on: the first ``n_per_class`` training clips per class, and the keyword captions.

    A subset of its training text that already holds all its words: captions are templates
    filled with class names and attribute words, and 20 clips per class draw every one (checked:
    the same 73 words as all 1,100 training clips). Generating 200 clips takes about a second.

    >>> captions = tiny_clap_training_text()
    >>> "the sound of a siren" in captions, "a voice saying yes" in captions
    (True, True)
    """
    from .data.speech import KEYWORDS
    from .data.synth import SynthSounds
    from .data.speech import keyword_captions

    synth = SynthSounds("train", n_per_class=n_per_class)
    captions = {c for i in range(len(synth)) for c in synth[i]["captions"]}
    captions |= {c for word in KEYWORDS for c in keyword_captions(word)}
    return tuple(sorted(captions))


#: The text each backbone with a representability check was trained on.
TRAINING_TEXT = {"tiny-clap": tiny_clap_training_text}


def feature_coverage(words, training_text) -> dict[str, float]:
    """For each word, the share of its hashed text features (word, character 3/4-grams) that occur in ``training_text``.

    tiny-clap's text embedding is an MLP on the *mean* of one row per feature. Rows of features
    never seen in training keep their random initial values (only shrunk by weight decay), so
    the coverage is exactly the share of the pooled vector that training shaped. Features are
    compared by their 32-bit crc32 (the hash before the bucket modulo), so two features that
    merely share a bucket do not count.

    >>> feature_coverage(["siren", "sirens", "zebra"], ["the sound of a siren"])
    {'siren': 1.0, 'sirens': 0.583, 'zebra': 0.0}
    """
    from .models.clap import text_features

    exact = 2**32  # crc32 % 2**32 is the crc32 itself: one id per feature string
    seen = {f for text in training_text for f in text_features(text, exact)}
    coverage = {}
    for word in words:
        features = text_features(word, exact)
        coverage[word] = round(sum(f in seen for f in features) / len(features), 3) if features else 0.0
    return coverage


def representability(words, clap) -> dict:
    """Which ``words`` the backbone's text encoder cannot represent well, and why.

    For tiny-clap (hashed n-grams, trained on a small caption set) a word is *flagged* unless more
    than :data:`FEATURE_COVERAGE_THRESHOLD` of its features were seen in training
    (:func:`feature_coverage`): otherwise at least half of its pooled features are random initial
    weights, not learned meaning. "guitar" shares no n-gram with tiny-clap's captions; "accordion"
    a third, all from "recording"; "sirens" and "knocking" share most with "siren" and "knock"
    and pass. On the shipped list, flagged words sit no nearer their nearest training word than
    words with no seen feature at all (mean cosine 0.67 for both), while representable words
    that are not training words sit nearer theirs (0.75; "knocks" -> "knock" 0.92).
    Backbones trained on open text (LAION-CLAP) have no such check: nothing is flagged and
    ``criterion`` says so.

    Returns ``{"backbone", "criterion", "threshold", "n_words", "n_flagged", "flagged": {word: coverage}}``.

    >>> from audiox.models.clap import TinyClap
    >>> report = representability(["siren", "sirens", "guitar"], TinyClap())
    >>> report["n_flagged"], report["flagged"]
    (1, {'guitar': 0.0})
    """
    words = deduplicate(words)
    name = getattr(clap, "name", type(clap).__name__)
    report = {"backbone": name, "n_words": len(words)}
    if name not in TRAINING_TEXT:
        return {**report, "criterion": f"none: no representability check for {name}", "threshold": None,
                "n_flagged": 0, "flagged": {}}
    coverage = feature_coverage(words, TRAINING_TEXT[name]())
    flagged = {w: c for w, c in coverage.items() if c <= FEATURE_COVERAGE_THRESHOLD}
    return {
        **report,
        "criterion": "feature coverage: share of the word's hashed features (word, character 3/4-grams) "
                     "seen in the backbone's training captions; flagged at or below the threshold",
        "threshold": FEATURE_COVERAGE_THRESHOLD,
        "n_flagged": len(flagged),
        "flagged": flagged,
    }


# ---- clustering ---------------------------------------------------------------------------------

@torch.no_grad()
def embed_words(words, clap, batch_size: int = 256) -> np.ndarray:
    """L2-normalised text embeddings ``[N, D]`` of the raw words (no prompt template, as in the paper)."""
    chunks = [clap.embed_text(list(words[i:i + batch_size])).float().cpu() for i in range(0, len(words), batch_size)]
    return torch.nn.functional.normalize(torch.cat(chunks), dim=-1).numpy().astype(np.float64)


def cluster(words, clap, k: int, seed: int = 0) -> list[str]:
    """The clustered vocabulary: k-means on the text embeddings of ``words``, the word nearest each centroid kept.

    The member of each cluster nearest its centroid is kept, so the ``k`` words are distinct;
    they come back in the order of ``words``. Deterministic for a given ``seed``.

    >>> from audiox.models.clap import TinyClap
    >>> clap = TinyClap()  # random weights: any text encoder will do
    >>> words = ["siren", "sirens", "bird", "birds", "rain", "raining"]
    >>> picked = cluster(words, clap, k=3)
    >>> len(picked), set(picked) <= set(words), picked == cluster(words, clap, k=3)
    (3, True, True)
    """
    from sklearn.cluster import KMeans

    words = deduplicate(words)
    if not 1 <= k <= len(words):
        raise ValueError(f"k={k}: ask for between 1 and {len(words)} clusters (the number of words).")
    embeddings = embed_words(words, clap)
    kmeans = KMeans(n_clusters=k, n_init=4, random_state=seed).fit(embeddings)
    distances = np.linalg.norm(embeddings - kmeans.cluster_centers_[kmeans.labels_], axis=1)
    nearest = {}
    for index, (label, distance) in enumerate(zip(kmeans.labels_, distances)):
        if label not in nearest or distance < distances[nearest[label]]:
            nearest[label] = index
    return [words[i] for i in sorted(nearest.values())]


def cluster_size(n_baseline: int, n_pruned: int, n_candidates: int) -> int:
    """k for the clustered vocabulary: the candidates shrunk by the ratio pruning shrank the baseline.

    With every baseline word representable this is the pruned size, so pruned and clustered
    compare at equal size as in the paper; with flagged words left out, the same compression.

    >>> cluster_size(1000, 800, 1000), cluster_size(1000, 800, 200)
    (800, 160)
    """
    return max(1, round(n_candidates * n_pruned / n_baseline))


def build_vocabularies(words, clap, seed: int = 0, keep=None) -> dict[str, list[str]]:
    """The three vocabularies from one tag list: ``{"baseline": ..., "pruned": ..., "clustered": ...}``.

    ``keep`` (default :func:`ground_truth_words`) is passed to :func:`prune`. The clustered
    vocabulary clusters the baseline words the backbone can represent (:func:`representability`:
    flagged words would be concepts whose embedding is mostly noise) into
    :func:`cluster_size` clusters.
    """
    baseline = deduplicate(words)
    pruned = prune(baseline, ground_truth_words() if keep is None else keep)
    flagged = representability(baseline, clap)["flagged"]
    candidates = [w for w in baseline if w not in flagged]
    if not candidates:
        raise ValueError(f"{clap.name} can represent none of the {len(baseline)} words; see representability().")
    k = cluster_size(len(baseline), len(pruned), len(candidates))
    return {"baseline": baseline, "pruned": pruned, "clustered": cluster(candidates, clap, k, seed)}


# ---- shipped files --------------------------------------------------------------------------

def backbone_dir(backbone: str, root=VOCAB_DIR) -> Path:
    """Where a backbone's vocabulary files live: ``data/vocab/<backbone>/`` (":" and "/" become "_")."""
    return Path(root) / re.sub(r"[:/\\]", "_", backbone)


def vocabulary_path(name: str, backbone: str = "tiny-clap") -> Path:
    """The shipped file of a vocabulary: ``data/vocab/<name>.txt``, or per backbone for the clustered one."""
    if name not in VOCABULARIES:
        raise ValueError(f"unknown vocabulary {name!r}; choose one of {list(VOCABULARIES)}.")
    return backbone_dir(backbone) / f"{name}.txt" if name in BACKBONE_DEPENDENT else VOCAB_DIR / f"{name}.txt"


def load_vocabulary(name: str, backbone: str = "tiny-clap", representable: bool = False) -> list[str]:
    """A shipped vocabulary as a list of words: ``"baseline"``, ``"pruned"`` or ``"clustered"`` (per ``backbone``).

    ``representable=True`` leaves out the words that ``backbone``'s report flags as poorly
    represented by its text encoder (see :func:`representability`); the clustered vocabulary
    has none of them already.

    >>> load_vocabulary("baseline")[:4]
    ['field-recording', 'noise', 'ambience', 'voice']
    >>> len(load_vocabulary("pruned", representable=True)) < len(load_vocabulary("pruned"))
    True
    >>> load_vocabulary("clustered", backbone="laion-clap")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    ValueError: no clustered vocabulary for backbone 'laion-clap' (...); build it with `python scripts/make_vocabularies.py --backbone laion-clap`.
    """
    path = vocabulary_path(name, backbone)
    if not path.is_file():
        if name in BACKBONE_DEPENDENT:
            raise ValueError(
                f"no {name} vocabulary for backbone {backbone!r} ({path} is missing); "
                f"build it with `{BUILD_COMMAND} --backbone {backbone}`."
            )
        raise ValueError(f"{path} is missing; `git checkout data/vocab` or rebuild with `{BUILD_COMMAND}`.")
    words = read_tag_list(path)
    if representable:
        flagged = set(load_report(backbone)["flagged"])
        words = [w for w in words if w not in flagged]
    return words


def load_report(backbone: str = "tiny-clap") -> dict:
    """The representability report of a backbone (``data/vocab/<backbone>/report.json``): counts and flagged words."""
    import json

    path = backbone_dir(backbone) / "report.json"
    if not path.is_file():
        raise ValueError(
            f"no report for backbone {backbone!r} ({path} is missing); build it with `{BUILD_COMMAND} --backbone {backbone}`."
        )
    return json.loads(path.read_text())

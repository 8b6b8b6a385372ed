"""Concept vocabularies: the project's tag list, the three shipped vocabularies and their rules.

The shipped files must be what the code builds from the shipped list (baseline and pruned are
pure text, rebuilt exactly); the clustered one depends on floating point, so it is checked for
its contract (size, membership, representable words) and rebuilt for determinism on a subset.
"""

from __future__ import annotations

import importlib.util
import json
import re
from pathlib import Path

import pytest

from audiox import vocab
from audiox.data.speech import KEYWORDS
from audiox.data.synth import ATTRIBUTE_WORDS, CLASSES
from audiox.models.zoo import load_clap

ROOT = Path(__file__).resolve().parent.parent
#: Typos planted in sound_tags.txt, each with the tag it misspells (or that tag's root).
PLANTED_MISSPELLINGS = {
    "wistle": "whistle", "whisle": "whistle", "footstpes": "footstep", "helicoper": "helicopter",
    "thuner": "thunder", "enigne": "engine", "birdsnog": "birdsong", "appluase": "applause",
    "keybaord": "keyboard", "raindorps": "raindrop", "trafic": "traffic",
}


@pytest.fixture(scope="module")
def tags():
    return vocab.read_tag_list(vocab.SOUND_TAGS)


@pytest.fixture(scope="module")
def clap():
    return load_clap("tiny-clap", device="cpu")


@pytest.fixture(scope="module")
def shipped():
    return {name: vocab.load_vocabulary(name) for name in vocab.VOCABULARIES}


@pytest.fixture(scope="module")
def report():
    return vocab.load_report("tiny-clap")


def letters(word):
    return re.sub(r"[^a-z]", "", word)


# ---- the tag list -------------------------------------------------------------------------------

def test_tag_list_is_a_lower_case_list_of_at_least_1000_tags(tags):
    raw = vocab.SOUND_TAGS.read_text().splitlines()
    assert len(tags) >= 1000
    assert raw == tags, "one tag per line, lower case, no blanks, comments or surrounding spaces"


def test_tag_list_holds_every_ground_truth_word(tags):
    missing = (set(CLASSES) | set(ATTRIBUTE_WORDS) | set(KEYWORDS)) - set(tags)
    assert not missing


def test_tag_list_has_the_noise_of_a_real_tag_list(tags):
    present = set(tags)
    assert {"808", "2"} <= present and {"a", "x"} <= present
    assert {"bird", "birds", "knock", "knocking", "knocks"} <= present
    assert set(PLANTED_MISSPELLINGS) | {"foot-steps", "hihat", "hi-hat"} <= present
    assert len(tags) > len(set(tags)), "a few exact repeats, as in a tag dump"


# ---- baseline -----------------------------------------------------------------------------------

def test_baseline_is_the_deduplicated_list_in_order(tags, shipped):
    assert shipped["baseline"] == list(dict.fromkeys(tags))
    assert len(set(shipped["baseline"])) == len(shipped["baseline"])


# ---- pruned -------------------------------------------------------------------------------------

def test_shipped_pruned_is_what_prune_builds(tags, shipped):
    assert shipped["pruned"] == vocab.prune(tags, vocab.ground_truth_words())


def test_pruned_has_no_numbers_or_single_letters(shipped):
    assert not [w for w in shipped["pruned"] if any(c.isdigit() for c in w) or len(letters(w)) < 2]


def test_pruned_has_no_root_next_to_its_plural_or_ing_form(shipped):
    pruned = set(shipped["pruned"])
    pairs = []
    for w in pruned:
        forms = {w + "s", w + "es", w + "ing", w[:-1] + "ing" if w.endswith("e") else None, w + w[-1] + "ing"}
        if w.endswith("y"):
            forms.add(w[:-1] + "ies")
        pairs += [(w, f) for f in forms if f in pruned]
    assert not pairs
    keys = [letters(w) for w in shipped["pruned"]]
    assert len(keys) == len(set(keys)), "spelling variants such as hi-hat / hihat survived"


def test_pruned_drops_the_planted_misspellings_and_keeps_what_they_misspell(shipped):
    pruned = set(shipped["pruned"])
    assert not (set(PLANTED_MISSPELLINGS) | {"foot-steps", "hihat"}) & pruned
    assert set(PLANTED_MISSPELLINGS.values()) <= pruned


def test_pruned_keeps_attribute_words_keywords_and_class_roots(shipped):
    pruned = set(shipped["pruned"])
    assert set(ATTRIBUTE_WORDS) <= pruned and set(KEYWORDS) <= pruned
    roots = {c: vocab.root(c, {letters(w) for w in shipped["baseline"]}) for c in CLASSES}
    assert roots["footsteps"] == "footstep"
    assert set(roots.values()) <= pruned


def test_pruning_log_explains_every_removed_word(shipped):
    log = json.loads((vocab.VOCAB_DIR / "pruning.json").read_text())
    removed = set(shipped["baseline"]) - set(shipped["pruned"])
    assert set(log["removed"]) == removed
    assert (log["n_baseline"], log["n_pruned"]) == (len(shipped["baseline"]), len(shipped["pruned"]))
    assert sum(log["removed_by_rule"].values()) == len(removed)
    assert log["removed"]["wistle"] == "misspelling of 'whistle'"
    assert log["removed"]["birds"] == "plural/-ing form of 'bird'"


@pytest.mark.parametrize("words, keep, expected", [
    (["knocks", "knock", "knocking"], (), ["knock"]),  # root kept, wherever it sits
    (["dripping", "drip", "drips"], (), ["drip"]),  # doubled consonant
    (["crackling", "crackle"], ("crackling",), ["crackling"]),  # a ground-truth word represents its group
    (["wolves", "wolf", "flies", "fly", "crashes", "crash"], (), ["wolf", "fly", "crash"]),
    (["glass", "bass", "bus", "ring", "string"], (), ["glass", "bass", "bus", "ring", "string"]),  # not plurals / -ing
    (["news", "steam", "stream", "shatter", "shutter", "harmonic", "harmonica"], (),
     ["news", "steam", "stream", "shatter", "shutter", "harmonic", "harmonica"]),  # real words, not typos
    (["beating", "bleat", "bleating"], (), ["beating", "bleat"]),  # "bleating" is attested by "bleat"
    (["whistle", "wistle", "foot-steps", "footsteps"], (), ["whistle", "foot-steps"]),
    (["wistle", "whistle"], (), ["wistle"]),  # only the order (most frequent first) tells the typo
    (["808", "2", "a", "16-bit", "x", "go"], (), ["go"]),
])
def test_pruning_rules(words, keep, expected):
    assert vocab.prune(words, keep) == expected


def test_protected_words_are_never_removed():
    assert vocab.prune(["2", "ring", "ringing"], keep=["2", "ring", "ringing"]) == ["2", "ring", "ringing"]


# ---- representability ------------------------------------------------------------------------

def test_report_matches_the_shipped_files(shipped, report):
    assert report["backbone"] == "tiny-clap"
    assert report["n_words"] == len(shipped["baseline"])
    assert report["sizes"] == {name: len(words) for name, words in shipped.items()}
    assert report["n_flagged"] == len(report["flagged"])
    assert set(report["flagged"]) <= set(shipped["baseline"])
    assert report["n_flagged_in_pruned"] == len(set(report["flagged"]) & set(shipped["pruned"]))
    assert all(c <= report["threshold"] for c in report["flagged"].values())
    assert report["clustered"]["candidates"] == len(shipped["baseline"]) - report["n_flagged"]


def test_representable_vocabularies_leave_out_exactly_the_flagged_words(shipped, report):
    for name, words in shipped.items():
        kept = vocab.load_vocabulary(name, representable=True)
        assert kept == [w for w in words if w not in report["flagged"]]
    assert vocab.load_vocabulary("clustered", representable=True) == shipped["clustered"]


def test_report_is_what_the_criterion_gives(shipped, report, clap):
    recomputed = vocab.representability(shipped["baseline"], clap)
    assert recomputed["flagged"] == report["flagged"]


def test_words_tiny_clap_was_trained_on_are_representable_and_unseen_ones_flagged(clap):
    words = list(CLASSES) + list(ATTRIBUTE_WORDS) + list(KEYWORDS)
    assert vocab.representability(words, clap)["n_flagged"] == 0
    result = vocab.representability(["sirens", "knocking", "guitar", "accordion", "808", "zzzz"], clap)
    assert list(result["flagged"]) == ["guitar", "accordion", "808", "zzzz"]


def test_backbones_without_a_check_flag_nothing():
    class OpenTextClap:
        name = "laion-clap"

    result = vocab.representability(["guitar", "zzzz"], OpenTextClap())
    assert result["n_flagged"] == 0 and result["criterion"].startswith("none")


# ---- clustered ----------------------------------------------------------------------------------

def test_clustered_is_representable_baseline_words_of_the_documented_size(shipped, report):
    clustered = shipped["clustered"]
    assert len(set(clustered)) == len(clustered)
    assert set(clustered) <= set(shipped["baseline"])
    assert not set(clustered) & set(report["flagged"])
    k = vocab.cluster_size(len(shipped["baseline"]), len(shipped["pruned"]), report["clustered"]["candidates"])
    assert len(clustered) == k == report["clustered"]["k"]
    order = {w: i for i, w in enumerate(shipped["baseline"])}
    assert [order[w] for w in clustered] == sorted(order[w] for w in clustered), "kept in baseline order"


def test_clustering_is_deterministic_on_a_subset(shipped, report, clap):
    subset = [w for w in shipped["baseline"] if w not in report["flagged"]][:60]
    first = vocab.cluster(subset, clap, k=20, seed=0)
    assert first == vocab.cluster(subset, clap, k=20, seed=0)
    assert len(first) == 20 and set(first) <= set(subset)
    built = vocab.build_vocabularies(subset + ["guitar", "808"], clap)
    assert built == vocab.build_vocabularies(subset + ["guitar", "808"], clap)
    assert "guitar" in built["baseline"] and "guitar" not in built["clustered"]


def test_script_builds_all_three_from_a_user_tag_list(tmp_path, clap):
    spec = importlib.util.spec_from_file_location("make_vocabularies", ROOT / "scripts" / "make_vocabularies.py")
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    tag_file = tmp_path / "tags.txt"
    tag_file.write_text("# a user's tags\nsiren\nsirens\nbird\nbirds\nchirping\nguitar\n808\nx\nwhistle\nwhistling\nwistle\nrain\n")
    report = script.main(["--tags", str(tag_file), "--out", str(tmp_path / "vocab")])
    out = tmp_path / "vocab"
    assert vocab.read_tag_list(out / "baseline.txt")[:3] == ["siren", "sirens", "bird"]
    assert vocab.read_tag_list(out / "pruned.txt") == ["siren", "bird", "chirping", "guitar", "whistle", "rain"]
    clustered = vocab.read_tag_list(out / "tiny-clap" / "clustered.txt")
    assert len(clustered) == report["clustered"]["k"] and not {"guitar", "808", "x"} & set(clustered)
    assert json.loads((out / "tiny-clap" / "report.json").read_text())["flagged"] == {"guitar": 0.0, "808": 0.0, "x": 0.0}


# ---- errors -------------------------------------------------------------------------------------

def test_unknown_vocabulary_lists_the_valid_ones():
    with pytest.raises(ValueError, match=r"unknown vocabulary 'big'.*'baseline', 'pruned', 'clustered'"):
        vocab.load_vocabulary("big")


def test_missing_clustered_vocabulary_says_to_run_the_script():
    with pytest.raises(ValueError, match=r"backbone 'laion-clap'.*python scripts/make_vocabularies.py --backbone laion-clap"):
        vocab.load_vocabulary("clustered", backbone="laion-clap")
    with pytest.raises(ValueError, match="make_vocabularies.py --backbone laion-clap"):
        vocab.load_report("laion-clap")


def test_read_tag_list_refuses_missing_and_empty_files(tmp_path):
    with pytest.raises(ValueError, match="does not exist"):
        vocab.read_tag_list(tmp_path / "nope.txt")
    empty = tmp_path / "empty.txt"
    empty.write_text("# only a comment\n\n   \n")
    with pytest.raises(ValueError, match="holds no tags"):
        vocab.read_tag_list(empty)


def test_cluster_refuses_impossible_k(clap):
    with pytest.raises(ValueError, match="between 1 and 2"):
        vocab.cluster(["siren", "bird"], clap, k=3)

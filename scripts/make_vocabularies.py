"""Build the concept vocabularies shipped in ``data/vocab/``: baseline, pruned and (per backbone) clustered.

From one tag list (by default the project's own ``data/vocab/sound_tags.txt``; any list with one
tag per line works, e.g. FSD50K's tags) it writes::

    <out>/baseline.txt              the list, deduplicated, order kept
    <out>/pruned.txt                numbers, single letters, misspellings removed; forms merged
    <out>/pruning.json              every removed tag and why
    <out>/<backbone>/clustered.txt  k-means on the backbone's text embeddings, nearest tag per centroid
    <out>/<backbone>/report.json    tags the backbone cannot represent, and the counts

The rules live in :mod:`audiox.vocab`; this script only reads, calls and writes. The output is
deterministic for a given tag list, backbone and ``--seed`` (embeddings are computed on CPU).

Usage::

    python scripts/make_vocabularies.py                                  # data/vocab/, tiny-clap
    python scripts/make_vocabularies.py --tags fsd50k_tags.txt --backbone laion-clap --out /tmp/vocab
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from audiox import vocab  # noqa: E402  (the script runs from a checkout, before any install)
from audiox.models.zoo import load_clap  # noqa: E402


def write_words(path: Path, words: list[str], header: str) -> None:
    """One word per line under a ``#`` header (``read_tag_list`` skips it); written whole or not at all."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(f"# {header}\n" + "".join(f"{w}\n" for w in words), encoding="utf-8")
    tmp.replace(path)


def write_json(path: Path, data: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(data, indent=1) + "\n", encoding="utf-8")
    tmp.replace(path)


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tags", type=Path, default=vocab.SOUND_TAGS, help="tag list, one tag per line")
    parser.add_argument("--backbone", default="tiny-clap", help="CLAP whose text embeddings the clustered vocabulary uses")
    parser.add_argument("--out", type=Path, default=vocab.VOCAB_DIR, help="folder for the vocabulary files")
    parser.add_argument("--seed", type=int, default=0, help="k-means seed")
    parser.add_argument("--device", default="cpu", help="device for the text embeddings (cpu keeps the output reproducible)")
    args = parser.parse_args(argv)

    tags = vocab.read_tag_list(args.tags)
    clap = load_clap(args.backbone, device=args.device)
    keep = vocab.ground_truth_words()
    vocabularies = vocab.build_vocabularies(tags, clap, seed=args.seed, keep=keep)
    baseline, pruned, clustered = (vocabularies[name] for name in vocab.VOCABULARIES)
    removed = vocab.explain_pruning(baseline, keep)
    removed_by_rule = Counter(reason.split(" of ")[0] for reason in removed.values())
    representability = vocab.representability(baseline, clap)
    flagged = representability["flagged"]
    n_candidates = len(baseline) - len(flagged)

    source = args.tags.name
    built_by = f"built by `{vocab.BUILD_COMMAND}` from {source}; rules in audiox/vocab.py"
    write_words(args.out / "baseline.txt", baseline, f"baseline vocabulary: {len(baseline)} tags, {built_by}")
    write_words(args.out / "pruned.txt", pruned, f"pruned vocabulary: {len(pruned)} tags, {built_by}")
    write_json(args.out / "pruning.json", {
        "source": source,
        "n_baseline": len(baseline),
        "n_pruned": len(pruned),
        "protected": keep,
        "removed_by_rule": dict(removed_by_rule),
        "removed": removed,
    })
    backbone_dir = vocab.backbone_dir(args.backbone, args.out)
    write_words(backbone_dir / "clustered.txt", clustered,
                f"clustered vocabulary for {args.backbone}: {len(clustered)} tags, {built_by}")
    report = {
        **{k: v for k, v in representability.items() if k != "flagged"},
        "source": source,
        "flagged_words_are": "kept in baseline and pruned (backbone-independent), left out of clustered",
        "sizes": {name: len(words) for name, words in vocabularies.items()},
        "n_flagged_in_pruned": sum(w in flagged for w in pruned),
        "clustered": {
            "candidates": n_candidates,
            "k": len(clustered),
            "k_rule": "round(candidates * n_pruned / n_baseline): the candidates shrunk as pruning shrank the baseline",
            "seed": args.seed,
        },
        "ground_truth_missing": {name: [w for w in keep if w not in set(words)] for name, words in vocabularies.items()},
        "flagged": flagged,
    }
    write_json(backbone_dir / "report.json", report)

    print(f"{len(tags)} tags from {source} -> baseline {len(baseline)}, pruned {len(pruned)}, "
          f"clustered {len(clustered)} ({args.backbone}, k-means on {n_candidates} representable tags)")
    print("pruning removed " + ", ".join(f"{rule}: {n}" for rule, n in removed_by_rule.items()))
    print(f"{args.backbone}: {representability['criterion']}")
    print(f"  flagged {len(flagged)} of {len(baseline)} baseline tags ({report['n_flagged_in_pruned']} of the "
          f"{len(pruned)} pruned), e.g. {', '.join(list(flagged)[:8])}")
    for name, missing in report["ground_truth_missing"].items():
        if missing:
            more = f" and {len(missing) - 10} more" if len(missing) > 10 else ""
            print(f"  ground-truth words not in {name}: {', '.join(missing[:10])}{more}")
    print(f"wrote {args.out}/baseline.txt, pruned.txt, pruning.json, {backbone_dir.name}/clustered.txt, report.json")
    return report


if __name__ == "__main__":
    main()

"""The package's shape: no import cycle, a light `import audiox`, the zoo as data, shared seams used once."""

import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from audiox import batching
from audiox.data.hub import sha256sum
from audiox.models import recipes, zoo

PACKAGE = Path(__file__).resolve().parent.parent / "audiox"
#: the method modules: loading a model must not import any of them
METHOD_MODULES = ["audiox.lmac", "audiox.l2i", "audiox.latent", "audiox.concepts", "audiox.nmf", "audiox.gradients",
                  "audiox.compare", "audiox.explain"]


def _modules() -> dict[str, Path]:
    found = {}
    for path in PACKAGE.rglob("*.py"):
        parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        found[".".join(parts)] = path
    return found


def import_graph() -> dict[str, set[str]]:
    """Every ``import`` of a module of the package by another, at module level or inside a function."""
    modules = _modules()
    graph = {name: set() for name in modules}
    for name, path in modules.items():
        package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
        for node in ast.walk(ast.parse(path.read_text())):
            targets = []
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    parts = package.split(".")
                    base = ".".join(parts[: len(parts) - node.level + 1] + ([node.module] if node.module else []))
                targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in modules else base for a in node.names]
            graph[name] |= {t for t in targets if t in modules and t != name}
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    found, state, stack = [], {}, []

    def visit(node):
        state[node] = "open"
        stack.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == "open":
                found.append(stack[stack.index(nxt):] + [nxt])
            elif nxt not in state:
                visit(nxt)
        stack.pop()
        state[node] = "done"

    for node in sorted(graph):
        if node not in state:
            visit(node)
    return found


def test_no_module_imports_another_in_a_cycle():
    graph = import_graph()
    assert "audiox.lmac" in graph["audiox.models.recipes"]  # the graph sees imports inside functions too
    assert cycles(graph) == []


def test_the_cycle_finder_finds_a_cycle():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": set()}) == [["a", "b", "c", "a"]]


def test_loading_a_clap_imports_no_method_module():
    code = ("import sys, audiox; audiox.load_clap('tiny-clap'); audiox.load_codec('tiny-codec'); audiox.explainers(); "
            f"print([m for m in {METHOD_MODULES[:-1]!r} if m in sys.modules])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]", out.stdout + out.stderr


def test_the_zoo_is_data_and_matches_the_files_and_cards():
    registry = json.loads(zoo.REGISTRY.read_text())
    assert registry == zoo.ZOO
    for name, entry in registry.items():
        card = zoo.card(name)
        assert entry["sha256"] == card["sha256"] == sha256sum(zoo.MODELS_DIR / entry["weights"]), name
        assert card["trained_by"] == f"python -m audiox.models.recipes train {name}"
        assert isinstance(zoo.model_class(name), type)
        for base in entry["depends_on"]:  # retraining a model without its dependants fails here
            assert card["depends_on"][base] == registry[base]["sha256"], (name, base)
    assert sorted(recipes.TRAINERS) == sorted(recipes.QUALITY) == sorted(registry)


def test_a_stale_registry_entry_is_refused(monkeypatch):
    monkeypatch.setitem(zoo.ZOO, "synth-cnn", {**zoo.ZOO["synth-cnn"], "sha256": "0" * 64})
    with pytest.raises(ValueError, match="stale or corrupt"):
        zoo.load("synth-cnn")


@pytest.mark.parametrize("name", ["l2i-synth-cnn", "l2i-tiny-clap"])
def test_shipped_interpreters_reproduce_their_cards(name):
    """Recomputed from the shipped weights: deterministic, so exactly the card's numbers."""
    quality = recipes.QUALITY[name](zoo.load(name, device="cpu"))
    assert quality == {k: v for k, v in zoo.card(name)["quality"].items() if k != "split"}
    assert quality["fidelity_top1"] >= 0.8 and quality["median_drop_relevant"] > 5 * quality["median_drop_random"]


def test_batched_splits_concatenates_and_checks():
    seen = []

    def fn(x, y):
        seen.append(len(x))
        return {"sum": x + y, "grad": torch.tensor([x.requires_grad] * len(x))}

    x = torch.arange(7.0, requires_grad=True)
    out = batching.batched(fn, x, torch.ones(7), batch_size=3)
    assert seen == [3, 3, 1] and out["sum"].tolist() == [1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0]
    assert not out["sum"].requires_grad  # no gradients unless asked
    assert batching.batched(lambda v: v * 2, x, batch_size=4, grad=True).requires_grad
    with pytest.raises(ValueError, match="one length"):
        batching.batched(fn, torch.ones(3), torch.ones(4))
    with pytest.raises(ValueError, match="empty"):
        batching.batched(lambda v: v, torch.ones(0))
    with pytest.raises(ValueError, match="positive"):
        batching.batched(lambda v: v, torch.ones(3), batch_size=0)


def test_shared_seams_are_used_not_rewritten():
    """The inverse STFT of a masked magnitude, the zero-shot logits and no-grad batch loops each live in one place."""
    sources = {name: path.read_text() for name, path in _modules().items()}
    istft_users = [n for n, s in sources.items() if "istft_with_phase(" in s and n != "audiox.audio"]
    # the latent input model resynthesises, it masks nothing; a wrapped model hears its (masked) magnitude as a wave
    assert istft_users == ["audiox.latent", "audiox.models.wrapped"], istft_users
    logit_scale_products = [n for n, s in sources.items() if "logit_scale * " in s.replace("``logit_scale * ", "")
                            and n != "audiox.zeroshot"]
    assert logit_scale_products == [], logit_scale_products
    loops = [n for n, s in sources.items() if ".split(batch_size)]" in s]
    assert loops == [], loops


def test_every_recipes_training_data_builds():
    """Each recipe's data step runs (a recipe is only run by `make zoo`: a broken import would wait there)."""
    magnitude, captions, words = recipes._clap_corpus("val")
    assert len(magnitude) == len(captions) == len(words) > 0
    assert recipes.lmac_training_clips("val", n_per_class=1).shape[-1] == 32_000
    assert set(recipes.codec_clips("val")) == {"keywords", "synth"}
    waves, labels = recipes.l2i_clips("val")
    assert len(waves) == len(labels) == 100
    assert recipes.l2i_model("l2i-tiny-clap").n_classes == recipes.l2i_model("l2i-synth-cnn").n_classes == 10

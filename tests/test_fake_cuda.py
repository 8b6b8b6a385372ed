"""The public paths on a fake CUDA device, on a machine without one: a tensor left on the wrong device fails here.

The harness (:func:`fake_device`) makes ``torch.cuda.is_available()`` true, so :func:`audiox.config.device`
picks CUDA and every model loads "on the GPU". A tensor on the fake device is an :class:`OnDevice`: a real
CPU tensor inside a wrapper whose ``.device`` says ``cuda:0``. Every operation goes through
:class:`FakeDevice`, a dispatch mode that checks the devices of its arguments as CUDA would, then computes
on the real CPU tensors. So, unlike FakeTensorMode or the meta device, values are real: ``.item()``,
``.tolist()``, boolean masks and the input checks run, and whole explanations and training steps go through.

What it checks, as CUDA: every tensor of an operation on one device, except CPU scalars (0-d tensors);
a CPU tensor indexed with a device index (CUDA indexes a device tensor with CPU indices, not the reverse);
values put into a tensor from another device; a CPU generator drawing device tensors; ``.numpy()`` of a
device tensor. It also lists every random draw made *on* the device (``mode.draws``): the explanations
draw their noise on the CPU, so a GPU draws what a CPU draws. With ``device="mps"`` it refuses float64
on the device, as MPS does.

What it does not check: CUDA kernels themselves (the numbers are the CPU's), streams and memory, and
code that asks for a real GPU (``torch.cuda.get_device_name``, CUDA generators, ``torch.save`` of a
device tensor). The wrapper's device inside torch's C++ is ``meta`` (so the autograd engine runs it on
the CPU); only Python sees ``cuda:0``.
"""

from __future__ import annotations

import contextlib
import copy

import numpy as np
import pytest
import torch
from torch.utils._python_dispatch import TorchDispatchMode, return_and_correct_aliasing

import audiox
from audiox import config
from audiox.data.synth import CLASSES, SynthSounds
from audiox.models import zoo
from audiox.models.base import numerics, parameter_device

aten = torch.ops.aten
CUDA = torch.device("cuda", 0)
#: operations that move data between devices: any mix of devices is fine
MOVES = {aten._to_copy.default, aten.copy_.default, aten.lift_fresh.default, aten.lift_fresh_copy.default,
         aten._copy_from.default, aten._copy_from_and_resize.default}
INDEX_PUT = {aten.index_put_.default, aten.index_put.default, aten._index_put_impl_.default}


class WrongDevice(RuntimeError):
    """What CUDA would have raised."""


class OnDevice(torch.Tensor):
    """A real CPU tensor (``elem``) that says it lives on ``fake_device``."""

    @staticmethod
    def __new__(cls, elem: torch.Tensor, device: torch.device):
        out = torch.Tensor._make_wrapper_subclass(
            cls, elem.size(), strides=elem.stride(), storage_offset=elem.storage_offset(), dtype=elem.dtype,
            layout=elem.layout, device=torch.device("meta"), requires_grad=elem.requires_grad)
        out.elem, out.fake_device = elem, device
        return out

    __torch_function__ = torch._C._disabled_torch_function_impl

    @property
    def device(self):
        return self.fake_device

    @property
    def is_cuda(self):
        return self.fake_device.type == "cuda"

    @property
    def is_meta(self):  # C++'s device; load_state_dict would skip copying into a "meta" parameter
        return False

    def __repr__(self):
        return f"OnDevice[{self.fake_device}]({self.elem!r})"

    def tolist(self):  # torch refuses .tolist() of any tensor subclass; CUDA copies to the host
        return self.elem.tolist()

    # An index given as Python data (a list, an array) becomes a tensor in C++ on the indexed tensor's C++
    # device, meta here: one without data. Made a CPU tensor first, as CUDA would read it.
    def __getitem__(self, index):
        return super().__getitem__(_index(index))

    def __setitem__(self, index, value):
        return super().__setitem__(_index(index), value)

    def numpy(self, *args, **kwargs):
        raise TypeError(f"can't convert {self.fake_device} device type tensor to numpy. Use Tensor.cpu() first.")

    def __deepcopy__(self, memo):
        out = OnDevice(copy.deepcopy(self.elem.detach(), memo), self.fake_device).requires_grad_(self.requires_grad)
        out.__dict__.update({k: v for k, v in self.__dict__.items() if k not in ("elem", "fake_device")})
        memo[id(self)] = out
        return out

    @classmethod
    def __torch_dispatch__(cls, func, types, args=(), kwargs=None):  # outside the mode (a repr, a teardown)
        device = next(t.fake_device for t in _leaves(args, kwargs or {}) if isinstance(t, OnDevice))
        return _run(func, args, kwargs or {}, device, draws=[], no_float64=device.type == "mps")


def _index(index):
    if isinstance(index, tuple):
        return tuple(_index(i) for i in index)
    if isinstance(index, (list, np.ndarray)) and not any(isinstance(i, (slice, torch.Tensor)) for i in index):
        return torch.as_tensor(np.asarray(index))
    return index


def _leaves(args, kwargs) -> list:
    """The arguments of an operation, lists (``cat``'s, ``index``'s) opened: faster than a pytree, per operation."""
    out = []
    for a in (*args, *kwargs.values()):
        if isinstance(a, (list, tuple)):
            out.extend(a)
        else:
            out.append(a)
    return out


def _unwrap(a):
    if isinstance(a, OnDevice):
        return a.elem
    if isinstance(a, (list, tuple)):
        return type(a)(_unwrap(x) for x in a)
    return a


def _wrap(a, device):
    if isinstance(a, torch.Tensor):
        return OnDevice(a, device)
    if isinstance(a, (list, tuple)):
        return type(a)(_wrap(x, device) for x in a)
    return a


def _where(t: torch.Tensor, device: torch.device) -> str:
    return str(device if isinstance(t, OnDevice) else t.device)


def _check(func, args, kwargs, tensors: list, device: torch.device) -> None:
    """Raise :class:`WrongDevice` where CUDA would refuse the operation."""
    def shown():
        return ", ".join(f"{_where(t, device)}{tuple(t.shape)}" for t in tensors)

    if func is aten.index.Tensor:
        indices = [i for i in args[1] if i is not None]
        if not isinstance(args[0], OnDevice) and any(isinstance(i, OnDevice) for i in indices):
            raise WrongDevice(f"indices should be either on cpu or on the same device as the indexed tensor (cpu): "
                              f"{func}({shown()})")
        return
    if func in INDEX_PUT:
        target, indices, values = args[0], [i for i in args[1] if i is not None], args[2]
        if not isinstance(target, OnDevice) and any(isinstance(i, OnDevice) for i in indices):
            raise WrongDevice(f"indices on {device} for a cpu tensor: {func}({shown()})")
        if isinstance(target, OnDevice) != isinstance(values, OnDevice) and (isinstance(values, OnDevice)
                                                                             or values.dim() > 0):
            raise WrongDevice(f"values from another device than the tensor they go into: {func}({shown()})")
        return
    if func in MOVES:
        return
    # a CPU scalar may join a device operation (CUDA reads it as a number); nothing else may
    places = {_where(t, device) for t in tensors if isinstance(t, OnDevice) or t.dim() > 0}
    if len(places) > 1:
        raise WrongDevice(f"Expected all tensors to be on the same device, but found {sorted(places)}: "
                          f"{func}({shown()})")


def _run(func, args, kwargs, device: torch.device, draws: list, no_float64: bool):
    """Check ``func`` as ``device`` would, run it on the CPU tensors inside, wrap what lands on the device."""
    leaves = _leaves(args, kwargs)
    tensors = [t for t in leaves if isinstance(t, torch.Tensor)]
    if any(t.device.type == "meta" and not isinstance(t, OnDevice) for t in tensors):
        raise AssertionError(f"harness: {func} got a tensor C++ made on the wrappers' meta device, without data")
    _check(func, args, kwargs, tensors, device)
    if kwargs.get("device") is not None:  # a factory, or a move to the device kwarg names
        on_device = torch.device(kwargs["device"]).type in (device.type, "meta")  # meta: C++'s view of a wrapper
    elif func is aten._to_copy.default:
        on_device = isinstance(args[0], OnDevice)
    else:
        on_device = any(isinstance(t, OnDevice) for t in tensors)
    for generator in (g for g in leaves if isinstance(g, torch.Generator)):
        if generator.device.type != (device.type if on_device else "cpu"):
            raise WrongDevice(f"Expected a '{device.type if on_device else 'cpu'}' device type for generator but "
                              f"found '{generator.device.type}': {func}")
    if on_device and torch.Tag.nondeterministic_seeded in func.tags:
        draws.append(func)
    if no_float64 and on_device and (kwargs.get("dtype") == torch.float64 or any(
            isinstance(t, OnDevice) and t.dtype == torch.float64 for t in tensors)):
        raise TypeError(f"Cannot convert a MPS Tensor to float64 dtype as the MPS framework doesn't support "
                        f"float64: {func}")
    if on_device and "device" in kwargs:
        kwargs = {**kwargs, "device": torch.device("cpu")}
    out = func(*_unwrap(args), **{k: _unwrap(v) for k, v in kwargs.items()})
    if not on_device:
        return out
    if no_float64 and any(isinstance(t, torch.Tensor) and t.dtype == torch.float64
                          for t in (out if isinstance(out, (list, tuple)) else [out])):
        raise TypeError(f"MPS has no float64: {func} made one on the device")
    # in-place and out= operations give back their argument, as torch expects; one that changes its
    # argument's shape (transpose_) changes the wrapper's too
    if torch.Tag.inplace_view in func.tags:
        result = return_and_correct_aliasing(func, args, kwargs, _wrap(out, device))
    elif "out" in kwargs:
        result = kwargs["out"]
    elif func._schema.is_mutable and func._schema.name.endswith("_") and isinstance(out, torch.Tensor):
        result = args[0]
    else:
        result = _wrap(out, device)
    for t in (result if isinstance(result, (list, tuple)) else [result]):
        if isinstance(t, OnDevice) and t.shape != t.elem.shape:  # a harness that lies about shapes checks nothing
            raise AssertionError(f"harness: {func} left a wrapper {tuple(t.shape)} around {tuple(t.elem.shape)}")
    return result


class FakeDevice(TorchDispatchMode):
    """Every operation checked as ``device`` would, then run on the CPU (:func:`_run`)."""

    def __init__(self, device: torch.device):
        super().__init__()
        self.device, self.draws = device, []

    @classmethod
    def _should_skip_dynamo(cls):  # nothing is compiled here: no torch._dynamo import, no wrapper on every op
        return False

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        return _run(func, args, kwargs or {}, self.device, self.draws, no_float64=self.device.type == "mps")


@contextlib.contextmanager
def fake_device(device: str = "cuda"):
    """Inside, ``config.device()`` is ``device`` (``"cuda"``, or ``"mps"``), tensors created or moved there are
    :class:`OnDevice`, and an operation that mixes devices raises :class:`WrongDevice`. Yields the mode
    (``mode.draws``: the random draws made on the device).

    What torch's FakeTensorMode does to trace CUDA code without a GPU, without the rest of it: a no-op CUDA
    device guard (so ``.to("cuda")`` finds "the current device"; for the rest of the process, as there),
    no CUDA initialisation (torch then counts CUDA as initialised, for the rest of the process: harmless
    where there is none), and ``torch.tensor(..., device=...)`` built on the CPU and then moved.
    """
    device = torch.device(device, 0)
    torch._C._ensureCUDADeviceGuardSet()
    saved = (torch.cuda.is_available, torch.cuda._lazy_init, torch.cuda.is_current_stream_capturing,
             torch.backends.mps.is_available, torch._C._only_lift_cpu_tensors(),
             torch.__future__.get_overwrite_module_params_on_conversion())
    torch.cuda.is_available = lambda: device.type == "cuda"
    torch.cuda._lazy_init = lambda: None
    torch.cuda.is_current_stream_capturing = lambda: False  # the optimisers ask, on a "GPU"
    torch.backends.mps.is_available = lambda: device.type == "mps"
    torch._C._set_only_lift_cpu_tensors(True)
    # module.to(device) then makes new parameters (OnDevice) instead of swapping a plain one's data
    torch.__future__.set_overwrite_module_params_on_conversion(True)
    mode = FakeDevice(device)
    try:
        with mode:
            yield mode
    finally:
        (torch.cuda.is_available, torch.cuda._lazy_init, torch.cuda.is_current_stream_capturing,
         torch.backends.mps.is_available) = saved[:4]
        torch._C._set_only_lift_cpu_tensors(saved[4])
        torch.__future__.set_overwrite_module_params_on_conversion(saved[5])


def on_device(*tensors) -> bool:
    return all(isinstance(t, OnDevice) for t in tensors)


def clips(n: int = 2, seconds: float = 0.3, split: str = "test") -> torch.Tensor:
    """``n`` SynthSounds clips (one per class from the first), each cut to the ``seconds`` around its peak:
    real sounds, kept short."""
    return short(SynthSounds(split, n_per_class=1).waves()[:n], seconds)


def short(waves: torch.Tensor, seconds: float = 0.3) -> torch.Tensor:
    length = int(seconds * 16_000) // 128 * 128  # whole hops: a codec gives back as many samples
    starts = (waves.abs().argmax(dim=-1) - length // 2).clamp(0, waves.shape[-1] - length)
    return torch.stack([w[s : s + length] for w, s in zip(waves, starts.tolist())])


@pytest.fixture(scope="module", autouse=True)
def _one_thread():
    """Tiny tensors, computed on the CPU: one thread is as fast, and spares the threads' spinning on a busy machine
    (it made this file several times slower beside another job). The CPU references are computed alike."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(autouse=True)
def _default_device(monkeypatch):
    monkeypatch.delenv("AUDIOX_DEVICE", raising=False)
    monkeypatch.delenv("AUDIOX_PROFILE", raising=False)


# ---- the harness itself ---------------------------------------------------------------------------------

def test_the_harness_raises_where_cuda_would_and_runs_what_cuda_runs():
    with fake_device() as mode:
        x = torch.ones(3, 2, device="cuda")
        assert config.device().type == "cuda" and x.device == CUDA and on_device(x)
        for wrong in (lambda: x + torch.ones(3, 2),                                      # a CPU tensor next to it
                      lambda: x.T @ torch.ones(3, 2),
                      lambda: torch.cat([x, torch.zeros(1, 2)]),
                      lambda: torch.arange(4)[torch.tensor([0, 2], device="cuda")],      # CPU indexed on the GPU
                      lambda: x.__setitem__(torch.tensor([0]), torch.zeros(1, 2)),       # CPU values into it
                      lambda: torch.randn(3, device="cuda", generator=torch.Generator().manual_seed(0)),
                      lambda: torch.empty(3, device="cuda").uniform_(generator=torch.Generator()),
                      lambda: torch.ones(2) * torch.tensor(2.0, device="cuda")):          # a GPU scalar on the CPU
            with pytest.raises(WrongDevice):
                wrong()
        with pytest.raises(TypeError, match="numpy"):
            x.numpy()
        # what CUDA accepts: CPU scalars, CPU indices into a device tensor, moves, data-dependent reads
        y = (x * torch.tensor(2.0) + 1)[torch.tensor([0, 2])]
        assert on_device(y) and y.tolist() == [[3.0, 3.0]] * 2 and float(y.sum()) == 12.0
        assert x[x > 0].shape == (6,) and not on_device(x.cpu()) and on_device(torch.ones(2).to(x))
        assert mode.draws == []
        torch.randn(2, device="cuda")
        assert mode.draws == [aten.randn.default]
        # training runs: autograd, optimiser, deepcopy, state dicts
        net = torch.nn.Sequential(torch.nn.Conv1d(2, 4, 3), torch.nn.BatchNorm1d(4), torch.nn.ReLU()).to(config.device())
        optimiser = torch.optim.AdamW(net.parameters())
        net(torch.randn(2, 2, 8, device="cuda")).sum().backward()
        optimiser.step()
        assert on_device(net[0].weight.grad) and on_device(*copy.deepcopy(net).state_dict().values())
    assert torch.cuda.is_available() is False  # all given back


def test_the_harness_refuses_float64_on_a_fake_mps():
    with fake_device("mps"):
        x = torch.ones(3, device=config.device())
        assert config.device().type == x.device.type == "mps"
        with pytest.raises(TypeError, match="float64"):
            x.double()
        assert x.cpu().double().sum().item() == 3.0


# ---- device choice, precision, caches -------------------------------------------------------------------

@pytest.fixture
def tf32_flags():
    saved = torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32
    yield
    torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32 = saved


def test_choosing_cuda_turns_tf32_off_and_the_cache_keys_name_device_and_precision(tf32_flags):
    torch.backends.cudnn.allow_tf32 = torch.backends.cuda.matmul.allow_tf32 = True  # TF32 everywhere
    assert config.device("cpu").type == "cpu" and torch.backends.cudnn.allow_tf32  # the CPU leaves them be
    with fake_device():
        assert config.device().type == "cuda"
        assert not torch.backends.cudnn.allow_tf32 and not torch.backends.cuda.matmul.allow_tf32
        clap = audiox.load_clap()
        assert numerics(clap) == "cuda-float32"
        torch.backends.cudnn.allow_tf32 = True
        assert numerics(clap) == "cuda-float32-tf32"  # a model run in TF32 is not cached as float32
        config.device("cuda")
        assert numerics(clap) == "cuda-float32" and numerics(clap.cpu()) == "cpu-float32"


def test_a_cache_shared_by_a_gpu_and_a_cpu_run_serves_each_its_own(monkeypatch, tmp_path):
    from audiox.concepts import concept_dictionary
    from audiox.zeroshot import embed_dataset

    monkeypatch.setenv("AUDIOX_CACHE", str(tmp_path))
    dataset, words = SynthSounds("test", n_per_class=1), ["siren", "bird", "rain"]
    with fake_device():
        clap = audiox.load_clap()
        embeddings, _ = embed_dataset(clap, dataset, progress=False)
        dictionary = concept_dictionary(clap, words, progress=False)
    assert not on_device(embeddings, dictionary.vectors)  # kept on the CPU
    assert [p.name.endswith("-cuda-float32") for p in (tmp_path / "embeddings").iterdir()] == [True]
    assert "-cuda-float32-" in dictionary.key
    # the CPU run misses the GPU's files and writes its own, next to them
    clap = audiox.load_clap(device="cpu")
    embed_dataset(clap, dataset, progress=False)
    assert concept_dictionary(clap, words, progress=False).key == dictionary.key.replace("-cuda-", "-cpu-")
    assert sorted(p.name.rsplit("-", 2)[1] for p in (tmp_path / "embeddings").iterdir()) == ["cpu", "cuda"]
    assert len(list((tmp_path / "concepts").iterdir())) == 2


# ---- seed 000 and 002: embeddings, zero-shot, concepts, LMAC-ZS -------------------------------------------

def test_embedding_zero_shot_and_retrieval_on_cuda_compute_what_the_cpu_computes():
    from audiox import zeroshot

    waves = clips(3)
    reference = audiox.load_clap(device="cpu").embed_audio(waves).detach()
    with fake_device():
        clap = audiox.load_clap()
        assert on_device(next(clap.parameters()))
        embedding = clap.embed_audio(waves)
        model = zeroshot.ZeroShotClassifier(clap, CLASSES, templates=zeroshot.TEMPLATES[:2])
        probabilities = zeroshot.zero_shot(clap, embedding, model.text_embeddings)
        logits = model(waves)
        text = clap.embed_text(["the sound of a siren", "a bird", "rain falling"])
        relevant = torch.eye(3, dtype=torch.bool)  # built on the CPU, as description_relevance does
        recall = zeroshot.recall_at_k(text @ embedding.T, relevant, ks=(1,))
        counts = zeroshot.confusion_matrix(logits.argmax(-1), torch.tensor([0, 1, 2]), len(CLASSES))
        given = zeroshot.ZeroShotClassifier(clap, CLASSES, text_embeddings=model.text_embeddings.cpu())
        assert on_device(embedding, probabilities, logits, model.prompt_embeddings(["a siren"]), given.text_embeddings)
        assert not on_device(zeroshot.embed_waves(clap, waves, progress=False))  # returned on the CPU
        assert torch.equal(embedding.detach().cpu(), reference) and 0.0 <= recall["R@1"] <= 1.0
        assert int(counts.sum()) == 3


def test_concept_decomposition_on_cuda():
    from audiox import concepts
    from audiox.data.synth import ATTRIBUTE_WORDS

    waves = clips(3)
    with fake_device():
        clap = audiox.load_clap()
        splice = concepts.SpLiCE(clap, list(CLASSES) + ATTRIBUTE_WORDS[:6], corpus=clips(4, split="val"))
        weights = splice.decompose(waves, l1=0.2)
        assert splice.top_concepts(weights[0], k=1)
        embeddings = clap.embed_audio(waves).detach()  # on the GPU this time: the solver runs there
        centred = concepts.centre(embeddings, splice.audio_mean)
        on_gpu = concepts.decompose(centred, splice.dictionary, l1=0.2)
        few = concepts.decompose(centred, splice.dictionary, n_concepts=2)
        recomposed = splice.recompose(splice.intervene(on_gpu, remove=["siren"]))
        sweep = concepts.zero_shot_vs_sparsity(clap, embeddings, torch.tensor([0, 1, 2]), CLASSES, splice.dictionary,
                                               splice.audio_mean, [0.1, 0.3])
        assert on_device(on_gpu, few, recomposed) and torch.allclose(on_gpu.cpu(), weights, atol=1e-5)
        assert len(sweep["rows"]) == 2


def test_lmac_zs_explains_and_trains_on_cuda():
    from audiox import lmac
    from audiox.zeroshot import ZeroShotClassifier

    waves = clips(2)
    with fake_device() as mode:
        model = ZeroShotClassifier(audiox.load_clap(), CLASSES)
        decoder = lmac.MaskDecoder.for_clap(model.clap)
        assert on_device(next(decoder.parameters()))  # built around the CLAP: on its device
        shipped = lmac.LMACZS(model)
        for target in (None, "a siren wailing"):
            out = shipped.explain(waves, target)
            assert on_device(out.mask, out.wave, out.target)
        masks = lmac.masks_for(shipped.decoder, lmac.encode(model.clap, waves[:1]), model.text_embeddings)
        lmac.prompt_mask_means(masks, torch.eye(len(CLASSES), dtype=torch.bool)[:1])
        # one training step and its validation, with the absence term: training clips on the GPU, the
        # validation clips and the sources on the CPU
        sources = (torch.tensor([[0, 1], [2, -1]]), torch.stack([waves, waves.flip(0)], dim=1))
        history = lmac.train_decoder(model.clap, decoder, waves.to(config.device()), waves[:1], CLASSES, epochs=1,
                                     batch_size=2, prompts_per_clip=2, sources=sources,
                                     val_sources=(sources[0][:1], sources[1][:1]), progress=False)
        assert len(history.loss) == 1 and torch.isfinite(torch.tensor(history.loss)).all()
        assert mode.draws == []  # the pairs and gains are drawn on the CPU


# ---- seed 003: NMF and L2I ------------------------------------------------------------------------------

def test_nmf_on_cuda():
    from audiox import nmf

    waves = clips(3)
    with fake_device():
        V, _ = nmf.log_spectrogram(waves.to(config.device()))
        for beta, init in (("euclidean", "nndsvda"), ("kl", "random")):
            result = nmf.fit(V, n_components=4, beta=beta, init=init, l1=0.01, n_iter=3)
            H = nmf.transform(V[:2], result.W, beta=beta, n_iter=3)
            assert on_device(result.W, result.H, H) and len(result.costs) == 3
            nmf.cost(V, result.W, result.H, beta)
        masks = nmf.component_masks(result.W, H, [0, 2])
        heard = nmf.component_audio(waves[:2].to(config.device()), result.W, H, torch.tensor([1.0, 0.0, 1.0, 0.0]))
        assert on_device(masks, heard)


@pytest.mark.filterwarnings("ignore:.*frobenius_norm is deprecated:UserWarning")  # torch's norm on MPS, as on a Mac
def test_nmf_and_the_metrics_keep_float64_off_mps():
    from audiox import metrics, nmf

    waves = clips(2)
    mps = torch.device("mps", 0)  # with its index: torch built without MPS cannot look up the current one
    with fake_device("mps"):
        V, _ = nmf.log_spectrogram(waves.to(mps))
        result = nmf.fit(V, n_components=3, n_iter=2)
        nmf.fit(V, n_components=3, beta="kl", n_iter=2, init="random")
        nmf.cost(V, result.W, result.H)
        masks = torch.rand(2, 5, 7).to(mps)
        rows = {"SPS": metrics.sparseness(masks), "COMP": metrics.complexity(masks), "MM": metrics.mask_mean(masks)}
        assert set(metrics.summarize(rows)) == {"SPS", "COMP", "MM", "n"}
        metrics.bootstrap(rows["MM"])
        metrics.spearman(masks, masks.flip(0))
        metrics.ground_truth_overlap(masks, masks, masks)


def test_l2i_interprets_and_trains_by_design_on_cuda():
    from audiox import l2i, nmf
    from audiox.models.classifiers import CNNClassifier, spectrograms

    ds = SynthSounds("train", n_per_class=1)
    waves, labels = short(ds.waves()), ds.labels  # labels on the CPU, as a dataset gives them
    with fake_device():
        classifier = CNNClassifier(ds.classes, channels=(4, 8, 8, 16)).to(config.device()).eval()
        magnitude = spectrograms(classifier, waves)
        W = nmf.fit(torch.log1p(magnitude), n_components=6, n_iter=3).W
        interpreter = l2i.Interpreter.for_classifier(classifier, W, width=8)
        assert on_device(next(interpreter.parameters()), interpreter.dictionary)  # on the classifier's device
        for by_design in (False, True):
            history = l2i.train_interpreter(classifier, interpreter, magnitude, magnitude[:5], by_design=by_design,
                                            train_labels=labels, val_labels=labels[:5], epochs=1, batch_size=5,
                                            progress=False)
            assert len(history.loss) == 1
        out = l2i.L2I(classifier, interpreter, top=2).explain(waves[:3])
        drop = l2i.removal_drop(classifier, out.magnitude, out.mask, out.target)
        random = l2i.random_components(out.info["components"], torch.Generator().manual_seed(0),
                                       candidates=out.info["activations"].sum(-1) > 0)
        assert on_device(out.mask, out.wave, drop, random) and len(out[torch.tensor([0, 2])]) == 2
        shipped = l2i.L2I(zoo.load("synth-cnn")).explain(waves[:2])  # its shipped interpreter
        assert on_device(shipped.mask)


# ---- seed 001: latent attribution, fidelity curves in the latent and the input space ----------------------

def test_latent_attribution_and_fidelity_curves_on_cuda():
    from audiox import latent
    from audiox.models.classifiers import LatentClassifier

    waves = clips(1)
    reference = None
    for fake in (False, True):
        with fake_device() if fake else contextlib.nullcontext() as mode:
            codec = audiox.load_codec() if fake else audiox.load_codec(device="cpu")
            torch.manual_seed(0)
            classifier = LatentClassifier(["a", "b", "c"], codec.latent_channels, width=8).to(
                parameter_device(codec)).eval()
            shap = latent.LatentAttribution(classifier, codec, method="gradient_shap", n_samples=2).explain(waves)
            if not fake:
                reference = shap.scores
                continue
            assert mode.draws == [] and torch.equal(shap.scores.cpu(), reference)  # the CPU's noise, on a GPU
            out = latent.LatentAttribution(classifier, codec, n_steps=2, baseline="silence").explain(waves)
            assert on_device(out.scores, out.mask, out.wave) and on_device(*out.at_ratio(0.3).probabilities().values())
            curves = latent.fidelity_curves(codec, classifier, waves, seeds=(0,), ratios=(0.0, 1.0),
                                            input_space=True, heard=True, n_steps=2)
            assert set(curves.curves["keep"]) == {"latent, attributed", "latent, random", "latent, attributed, heard",
                                                  "input, attributed", "input, random"}
            agreement = latent.input_fidelity(codec, classifier, waves, ratios=(0.0, 1.0), n_steps=2)
            assert agreement[-1] == 1.0
            reads_waves = latent.LatentAttribution(zoo.load("synth-cnn"), codec, n_steps=2,
                                                   internal_batch_size=4).explain(waves)
            assert on_device(reads_waves.mask)


# ---- the gradient maps, the sanity check and the comparison -------------------------------------------------

def mixture(seconds: float = 0.3) -> dict:
    """One SynthSounds mixture at 0 dB cut to ``seconds`` around its event, as a condition of
    :func:`audiox.data.synth.comparison_conditions`: waves, labels, distractor labels, true masks."""
    from audiox.data.synth import ratio_masks

    item = SynthSounds("test", n_per_class=1, mixtures=True, snr_db=0.0)[0]
    length = int(seconds * 16_000) // 128 * 128
    start = int((item["sources"]["event"].abs().argmax() - length // 2).clamp(0, len(item["wave"]) - length)) // 128 * 128
    sources = {k: item["sources"][k][start : start + length] for k in ("event", "distractor", "noise")}
    masks = ratio_masks(torch.stack(list(sources.values())))
    return {"waves": sum(sources.values())[None], "labels": torch.tensor([item["label"]]),
            "distractor_labels": torch.tensor([item["distractor_label"]]),
            "masks": {k: m[None] for k, m in zip(sources, masks)}}


def test_gradient_maps_randomisation_and_comparison_on_cuda():
    from audiox import compare, gradients

    condition = mixture()
    waves = condition["waves"]
    smooth_cpu = gradients.SmoothGrad(zoo.load("synth-cnn", device="cpu"), n_samples=2).explain(waves).scores
    with fake_device() as mode:
        model = zoo.load("synth-cnn")
        options = {"Integrated Gradients": {"n_steps": 2}, "SmoothGrad": {"n_samples": 2}}
        for name, method in gradients.GRADIENT_MAPS.items():
            out = method(model, **options.get(name, {})).explain(waves)
            assert on_device(out.mask, out.scores)
        # SmoothGrad's noise is drawn on the CPU: none on the device, and the CPU's map, bit for bit
        smooth = gradients.SmoothGrad(model, n_samples=2).explain(waves)
        assert mode.draws == [] and torch.equal(smooth.scores.cpu(), smooth_cpu)
        explainers = {"Saliency": gradients.Saliency(model), "random": audiox.explainer("random", model)}
        sanity = compare.randomisation(explainers, model, waves, ["cnn.proj"])
        assert sanity["Saliency"]["similarity"].shape == (2, 1) and mode.draws == []  # re-initialised on the CPU
        result = compare.compare(explainers, model, {"mixture": condition}, sizes=(0.1,))
        assert "f_measure" in result.per_clip["mixture", "Saliency", 0.1]
        assert compare.follows_the_question(explainers["Saliency"], condition)["moved"].shape == (1,)


# ---- the zoo's recipes: each loss on one batch, and what each recipe puts where ----------------------------

def test_each_recipes_loss_on_one_batch_on_cuda(monkeypatch):
    from audiox.models import classifiers, codec as codecs, recipes
    from audiox.models.clap import TinyClap
    from audiox.models.train import random_gain_and_shift
    from audiox.zeroshot import description_relevance, item_words

    ds = SynthSounds("train", n_per_class=1)
    items = [ds[i] for i in range(4)]
    captions = [item["captions"][0] for item in items]
    waves = short(ds.waves()[:4])
    with fake_device():
        device = config.device()
        # tiny-clap: the contrastive loss, relevance built on the CPU from words
        clap = TinyClap().to(device)
        magnitude = clap.spectrogram(waves)[0]
        relevant = description_relevance(captions, [item_words(item) for item in items])
        loss = recipes.contrastive_loss(clap.spec_to_embedding(random_gain_and_shift(magnitude, torch.Generator())),
                                        clap.embed_text(captions), relevant, clap.log_logit_scale.exp())
        loss.backward()
        # tiny-clap is trained on the CPU while a GPU is there: its validation stays with the model
        quality = recipes.synth_quality(TinyClap(), dataset=SynthSounds("val", n_per_class=1))
        assert 0.0 <= quality["zero_shot_accuracy"] <= 1.0
        # synth-cnn: the classifier's training, one epoch of one batch
        cnn = classifiers.CNNClassifier(ds.classes, channels=(4, 8, 8, 16)).to(device)
        classifiers.train_classifier(cnn, waves, ds.labels[:4], waves, ds.labels[:4], epochs=1, batch_size=4,
                                     progress=False)
        # tiny-codec
        codec = codecs.TinyCodec(latent_channels=8, width=16).to(device)
        wave = waves.to(device)
        codecs.codec_loss(wave, codec.decode(codec.encode(wave)), codec.hop_length).backward()

        # keyword-latent-cnn: the recipe as written, its training cut to one batch of four clips
        def one_batch(codec, model, train_waves, train_labels, val_waves, val_labels, **options):
            assert parameter_device(model) == parameter_device(codec) == CUDA
            return real(codec, model, train_waves[:4], train_labels[:4], val_waves[:4], val_labels[:4], epochs=1,
                        batch_size=4, resynthesised=False, progress=False)

        real = classifiers.train_latent_classifier
        monkeypatch.setattr(classifiers, "train_latent_classifier", one_batch)
        model, history = recipes.train_keyword_latent_cnn(epochs=1, progress=False)
        assert len(history.loss) == 1 and on_device(next(model.parameters()))
        # l2i: the shipped interpreter (on the CPU, as train_and_ship hands it) is evaluated next to its model
        monkeypatch.setattr(recipes, "l2i_clips", lambda split: (waves[:2], ds.labels[:2]))
        shipped = zoo.load("l2i-synth-cnn", device="cpu")
        assert recipes.l2i_quality("l2i-synth-cnn", shipped)["clips"] == 2

"""The models of the course: the contract (:mod:`.base`), the shipped ones (:mod:`.zoo`), real pretrained ones from
their packages (:mod:`.pretrained`), and :func:`wrap`, which makes any wave-to-logits module a Classifier."""

from .wrapped import WrappedModel, wrap

__all__ = ["WrappedModel", "wrap"]

"""Fixtures shared by several test files: the shipped models, loaded once per test file."""

import pytest

from audiox.data.synth import CLASSES
from audiox.models import zoo
from audiox.zeroshot import ZeroShotClassifier


@pytest.fixture(scope="module")  # per test file, as before: a test may change the model it is given
def zero_shot():
    """tiny-clap's zero-shot classifier of the SynthSounds classes."""
    return ZeroShotClassifier(zoo.load("tiny-clap", device="cpu"), CLASSES)


@pytest.fixture(scope="module")  # per test file, as before: a test may change the model it is given
def cnn():
    """The shipped synth-cnn classifier."""
    return zoo.load("synth-cnn", device="cpu")

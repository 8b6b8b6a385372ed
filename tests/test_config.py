"""audiox.config: profiles, cache dir, device choice, seeding."""

import pytest
import torch

from audiox import config


def test_profile_defaults_to_offline(monkeypatch):
    monkeypatch.delenv("AUDIOX_PROFILE", raising=False)
    assert config.profile() == "offline"


def test_profile_from_environment_and_argument(monkeypatch):
    monkeypatch.setenv("AUDIOX_PROFILE", "FULL")
    assert config.profile() == "full"
    assert config.profile("offline") == "offline"


def test_unknown_profile_names_the_choices(monkeypatch):
    monkeypatch.setenv("AUDIOX_PROFILE", "gpu")
    with pytest.raises(ValueError, match=r"AUDIOX_PROFILE='gpu'.*'offline', 'full'"):
        config.profile()


def test_cache_dir_from_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("AUDIOX_CACHE", str(tmp_path / "c"))
    assert config.cache_dir() == tmp_path / "c" and (tmp_path / "c").is_dir()


def test_default_cache_is_git_ignored(monkeypatch):
    monkeypatch.delenv("AUDIOX_CACHE", raising=False)
    assert config.cache_dir() == config.DATA_DIR / "cache"
    ignore = (config.DATA_DIR.parent / ".gitignore").read_text().split()
    assert "data/cache/" in ignore


def test_device_choice(monkeypatch):
    monkeypatch.delenv("AUDIOX_DEVICE", raising=False)
    expected = "cuda" if torch.cuda.is_available() else "cpu"
    if not torch.cuda.is_available() and torch.backends.mps.is_available():
        expected = "mps"
    assert config.device().type == expected
    monkeypatch.setenv("AUDIOX_DEVICE", "cpu")
    assert config.device().type == "cpu"


def test_cuda_requested_without_cuda():
    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    with pytest.raises(ValueError, match="CUDA is not available"):
        config.device("cuda")


def test_seed_everything_reproduces():
    config.seed_everything(3)
    a = torch.rand(3)
    config.seed_everything(3)
    assert torch.equal(a, torch.rand(3))


def test_budget_defaults_to_ci_without_a_gpu_offline(monkeypatch):
    monkeypatch.delenv("AUDIOX_BUDGET", raising=False)
    monkeypatch.delenv("AUDIOX_PROFILE", raising=False)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert config.budget() == "ci"
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert config.budget() == "full"


def test_budget_is_full_in_the_full_profile_which_has_no_shipped_weights(monkeypatch):
    monkeypatch.delenv("AUDIOX_BUDGET", raising=False)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setenv("AUDIOX_PROFILE", "full")
    assert config.budget() == "full"
    monkeypatch.setenv("AUDIOX_BUDGET", "ci")
    assert config.budget() == "ci"


def test_unknown_budget_names_the_choices(monkeypatch):
    monkeypatch.setenv("AUDIOX_BUDGET", "tiny")
    with pytest.raises(ValueError, match=r"AUDIOX_BUDGET='tiny'.*'ci', 'full'"):
        config.budget()

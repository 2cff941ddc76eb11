"""The texture pre-training stand-in for ImageNet weights (bench.models.pretrain). Budget: ~15 s."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from bench.models import create_backbone, pretrain
from bench.presets import get_preset


@pytest.fixture
def short_recipe(tmp_path, monkeypatch):
    monkeypatch.setenv("ADABENCH_CACHE", str(tmp_path))
    monkeypatch.setitem(pretrain.RECIPE, "steps", 20)
    return tmp_path


def test_texture_batch_is_seeded_and_labelled():
    x1, y1 = pretrain.texture_batch(32, np.random.default_rng(3))
    x2, y2 = pretrain.texture_batch(32, np.random.default_rng(3))
    assert x1.shape == (32, 3, 24, 24) and y1.shape == (32,) and y1.dtype == torch.int64
    assert torch.equal(x1, x2) and torch.equal(y1, y2) and int(y1.max()) < 5


def test_textures_weights_are_cached_deterministic_and_leave_the_rng_alone(short_recipe):
    torch.manual_seed(11)
    a = create_backbone("tiny", pretrained="textures")  # cache miss: pre-trains
    after_miss = torch.rand(3)
    torch.manual_seed(11)
    create_backbone("tiny", pretrained="textures")  # cache hit
    assert torch.equal(torch.rand(3), after_miss)  # the caller's stream does not depend on the cache
    path = pretrain.textures_path("tiny")
    assert path.is_file() and path.parent == short_recipe / "pretrained"
    stamp = path.stat().st_mtime_ns
    b = create_backbone("tiny_tsm", pretrained="textures", num_segments=4)
    assert path.stat().st_mtime_ns == stamp  # loaded, not trained again
    assert all(torch.equal(v, b.state_dict()[k]) for k, v in a.state_dict().items())
    path.unlink()
    c = create_backbone("tiny", pretrained="textures")  # re-trained from scratch: same bytes
    assert all(torch.equal(v, c.state_dict()[k]) for k, v in a.state_dict().items())
    rand = create_backbone("tiny")
    assert any(not torch.equal(v, rand.state_dict()[k]) for k, v in a.state_dict().items())


def test_tiny_preset_gives_both_methods_the_texture_start_of_both_networks():
    for method in ("v1", "v2"):
        p = get_preset("synthetic", "tiny", method=method)
        assert (p.glance_pretrained, p.focus_pretrained) == ("textures", "textures")
    narrow = create_backbone("tiny", pretrained="textures", width=0.25)  # f_G's width has its own weights
    assert narrow.out_channels == 32


@pytest.mark.slow
def test_full_recipe_learns_the_texture_task(tmp_path, monkeypatch):
    monkeypatch.setenv("ADABENCH_CACHE", str(tmp_path))
    bb = create_backbone("tiny", pretrained="textures")
    # a linear probe on frozen features separates the families (random features would not do this well)
    x, y = pretrain.texture_batch(512, np.random.default_rng(99))
    with torch.no_grad():
        f = bb.eval()(x)[1]
    probe = torch.nn.Linear(f.shape[1], 5)
    opt = torch.optim.Adam(probe.parameters(), 1e-2)
    for _ in range(300):
        loss = torch.nn.functional.cross_entropy(probe(f[:384]), y[:384])
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert (probe(f[384:]).argmax(1) == y[384:]).float().mean() > 0.8

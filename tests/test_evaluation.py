"""bench.training.evaluation: learned / random / centre patches on the same network."""

import pytest
import torch

from bench.models import build_network
from bench.presets import get_preset
from bench.training.evaluation import evaluate, patch_eval_results

K, B, T, S = 5, 4, 4, 32


@pytest.fixture(scope="module")
def net():
    torch.manual_seed(0)
    p = get_preset(
        "synthetic",
        "tiny",
        method="v2",
        frames=T,
        input_size=S,
        resize=S,
        patch_size=16,
        classifier_hidden=32,
        policy_hidden=(32,),
    )
    return build_network(p, num_classes=K)


def _batches(boxes=True, n=3):
    g = torch.Generator().manual_seed(0)
    out = []
    for i in range(n):
        label = torch.randint(0, K, (B,), generator=g)
        labels = torch.full((B, 3), -1)
        labels[:, 0] = label
        labels[:, 1] = (label + 1) % K
        box = torch.tensor([20.0, 20.0, 28.0, 28.0]).expand(B, T, 4).clone()  # object in the bottom-right
        out.append(
            {
                "frames": torch.randn(B, T, 3, S, S, generator=g),
                "label": label,
                "labels": labels,
                "boxes": box if boxes else torch.full((B, T, 4), float("nan")),
                "index": torch.arange(B) + i * B,
            }
        )
    return out


def test_shapes_modes_and_metrics(net):
    r = evaluate(net, _batches(), torch.device("cpu"), num_classes=K, multilabel=True)
    assert r.step_logits.shape == (3 * B, T, K) and r.locations.shape == (3 * B, T, 2)
    assert r.labels.shape == (3 * B,) and r.labels_multi.shape == (3 * B, 3)
    assert 0 <= r.top1 <= 1 and 0 <= r.map <= 1 and 0 <= r.coverage <= 1
    single = evaluate(net, _batches(), torch.device("cpu"), num_classes=K, multilabel=False)
    assert single.map is None and single.top1 == r.top1
    assert evaluate(net, _batches(boxes=False), torch.device("cpu")).coverage is None
    # centre patches: (0.5, 0.5) everywhere; a 16-px centre patch in a 32-px frame misses [20, 28)^2
    centre = evaluate(net, _batches(), torch.device("cpu"), patch_mode="centre")
    assert torch.all(centre.locations == 0.5) and centre.coverage == 0.0


def test_random_patches_are_seeded(net):
    a = evaluate(net, _batches(), torch.device("cpu"), patch_mode="random", seed=3)
    b = evaluate(net, _batches(), torch.device("cpu"), patch_mode="random", seed=3)
    c = evaluate(net, _batches(), torch.device("cpu"), patch_mode="random", seed=4)
    assert torch.equal(a.locations, b.locations) and torch.equal(a.step_logits, b.step_logits)
    assert not torch.equal(a.locations, c.locations)


def test_patch_eval_uses_one_network_three_ways(net):
    net.train()
    results = patch_eval_results(net, _batches(), torch.device("cpu"), seed=0)
    assert set(results) == {"learned", "random", "centre"}
    assert net.training  # the caller's mode is restored
    assert not torch.equal(results["learned"].locations, results["centre"].locations)
    again = patch_eval_results(
        net, _batches(), torch.device("cpu"), seed=0
    )  # random patches repeat with the seed
    assert {k: r.top1 for k, r in again.items()} == {k: r.top1 for k, r in results.items()}

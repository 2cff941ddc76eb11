"""Issue 14, exact resume with loader workers: every item's randomness (TSN offsets, crops, flips) and the
shuffling order are functions of (seed, epoch key, item index), never of a worker's RNG.

So the batches of an epoch are the same with 0 or 2 workers, in two loaders at the same epoch key, and
in a loader that starts at epoch k (a resumed run) and one that got there through epochs 0..k-1.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from fixtures_data import make_arnet, make_tsm_lists

from bench.data import ClipSpec, create_dataset, item_rng, make_loader, set_epoch
from bench.data.loader import EpochSampler, KeyedItems

SPEC = ClipSpec(frames=4, glance_frames=2, input_size=24, resize=28)
SEED = 7


@pytest.fixture(scope="module")
def jester(tmp_path_factory):
    """8 training videos of 9..23 frames: TSN offsets and multi-scale crops are random in training."""
    root = tmp_path_factory.mktemp("jester")
    make_tsm_lists(root, counts=(12, 9, 20, 15, 10, 23, 13, 14))
    return root


def _dataset(root, train=True):
    return create_dataset("jester", root, "train", SPEC, train=train)


def _epochs(loader, keys):
    """{key: list of batches} reading the loader once per key, in order, with set_epoch before each pass."""
    out = {}
    for key in keys:
        set_epoch(loader, key)
        out[key] = list(loader)
    return out


def _equal(x: torch.Tensor, y: torch.Tensor) -> bool:
    """Bit-equal, NaN equal to NaN (unknown boxes are NaN)."""
    return (
        x.shape == y.shape
        and x.dtype == y.dtype
        and torch.equal(x.nan_to_num(-7.0), y.nan_to_num(-7.0))
        and torch.equal(x.isnan(), y.isnan())
    )


def _same(a, b) -> bool:
    return len(a) == len(b) and all(
        x.keys() == y.keys() and all(_equal(x[k], y[k]) for k in x) for x, y in zip(a, b)
    )


def test_items_do_not_depend_on_workers_and_resume_at_any_epoch(jester):
    keys = [0, 1, 1001]  # e.g. 1000 * stage + epoch
    plain = _epochs(make_loader(_dataset(jester), 3, train=True, num_workers=0, seed=SEED), keys)
    workers = _epochs(make_loader(_dataset(jester), 3, train=True, num_workers=2, seed=SEED), keys)
    for key in keys:
        assert _same(plain[key], workers[key]), key
    # a run resumed at the last epoch, in a new loader (fresh persistent workers), reads what the first did
    resumed = _epochs(make_loader(_dataset(jester), 3, train=True, num_workers=2, seed=SEED), keys[-1:])
    assert _same(resumed[keys[-1]], plain[keys[-1]])
    # the premise: epochs differ in order and in content, so the equalities above are not trivial
    order = {key: torch.cat([b["index"] for b in plain[key]]).tolist() for key in keys}
    assert len({tuple(o) for o in order.values()}) == len(keys)
    assert len(plain[0]) == 2  # 8 videos, batch 3, the partial batch dropped in training


def test_an_item_is_its_index_seed_and_key_whatever_the_order(jester):
    ds = _dataset(jester)
    loader = make_loader(ds, 2, train=True, num_workers=0, seed=SEED)
    batches = _epochs(loader, [5])[5]
    for batch in batches:
        for row, j in enumerate(batch["index"].tolist()):
            direct = ds.load_item(j, item_rng(SEED, 5, j))
            assert torch.equal(batch["frames"][row], direct["frames"])
            assert torch.equal(batch["glance"][row], direct["glance"])
    # another key or another seed draws other offsets and crops for the same video
    j = batches[0]["index"][0].item()
    frames = [ds.load_item(j, item_rng(s, k, j))["frames"] for s, k in ((SEED, 5), (SEED, 6), (SEED + 1, 5))]
    assert not torch.equal(frames[0], frames[1]) and not torch.equal(frames[0], frames[2])


def test_two_loaders_agree_and_a_pass_without_set_epoch_moves_to_the_next_key(jester):
    a = make_loader(_dataset(jester), 2, train=True, num_workers=0, seed=SEED)
    b = make_loader(_dataset(jester), 2, train=True, num_workers=0, seed=SEED)
    first, second = list(a), list(a)  # keys 0 then 1
    assert _same(first, list(b)) and not _same(first, second)
    set_epoch(b, 1)
    assert _same(second, list(b))
    torch.manual_seed(0)  # the model's own seeding changes nothing
    set_epoch(b, 1)
    assert _same(second, list(b))
    other_seed = make_loader(_dataset(jester), 2, train=True, num_workers=0, seed=SEED + 1)
    assert not _same(first, list(other_seed))


def test_evaluation_is_in_order_and_subsets_keep_the_underlying_index(jester):
    ds = _dataset(jester, train=False)
    loader = make_loader(torch.utils.data.Subset(ds, [6, 2, 4]), 2, train=False, num_workers=0, seed=0)
    batches = _epochs(loader, [3])[3]
    assert [b["index"].tolist() for b in batches] == [[6, 2], [4]]
    assert torch.equal(batches[0]["frames"][0], ds[6]["frames"])
    assert isinstance(loader.dataset, KeyedItems) and loader.dataset.dataset.dataset is ds


def test_a_subset_of_a_training_set_draws_by_the_underlying_index(jester):
    ds = _dataset(jester)
    loader = make_loader(torch.utils.data.Subset(ds, [5, 1, 3, 7]), 4, train=True, num_workers=0, seed=SEED)
    (batch,) = _epochs(loader, [2])[2]
    for row, j in enumerate(batch["index"].tolist()):
        assert torch.equal(batch["frames"][row], ds.load_item(j, item_rng(SEED, 2, j))["frames"])


def test_distributed_shards_follow_the_epoch_key():
    data = list(range(11))

    def shards(key):
        out = []
        for rank in range(2):
            s = EpochSampler(data, shuffle=True, seed=SEED, distributed=True, num_replicas=2, rank=rank)
            s.set_epoch(key)
            out.append(list(s))
        return out

    a, b, c = shards(4), shards(4), shards(5)
    assert a == b and a != c
    assert all(k == 4 for shard in a for k, _ in shard)
    assert sorted(i for shard in a for _, i in shard) == sorted(
        data + [a[0][0][1]]
    )  # padded to 12 by a repeat
    assert len(a[0]) == len(a[1]) == 6


def test_set_epoch_reseeds_foreign_loaders_too(tmp_path):
    fx = make_arnet(tmp_path, "actnet")
    ds = create_dataset("actnet", fx.root, "train", SPEC, train=False)
    loader = torch.utils.data.DataLoader(ds, batch_size=1, shuffle=True, generator=torch.Generator())
    orders = []
    for key in (3, 3, 4):
        set_epoch(loader, key)
        orders.append([b["index"].item() for b in loader])
    assert orders[0] == orders[1] and sorted(orders[2]) == sorted(orders[0])


def test_shuffle_order_is_a_permutation_fixed_by_seed_and_key():
    from bench.data.loader import shuffle_order

    assert shuffle_order(50, 1, 2) == shuffle_order(50, 1, 2)
    assert sorted(shuffle_order(50, 1, 2)) == list(range(50))
    assert shuffle_order(50, 1, 2) != shuffle_order(50, 1, 3) != shuffle_order(50, 2, 2)
    assert np.unique([item_rng(1, 2, j).random() for j in range(20)]).size == 20

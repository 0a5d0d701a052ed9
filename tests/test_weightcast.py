"""The kept bf16 copies of large weights (weightcast.py): autocast's numbers, fewer casts."""

from __future__ import annotations

import torch

from genzoo_infogan.engine import Trainer
from genzoo_infogan.weightcast import Linear, WeightCasts, cast_weight

CPU_BF16 = dict(device_type="cpu", dtype=torch.bfloat16)


def test_a_layer_reads_autocasts_numbers_through_the_kept_copy():
    torch.manual_seed(0)
    plain = torch.nn.Linear(48, 32)
    kept = Linear(48, 32)
    kept.load_state_dict(plain.state_dict())
    x = torch.randn(8, 48)
    with torch.autocast(**CPU_BF16):
        want = plain(x)
        with WeightCasts().phase():
            got = kept(x)
    assert got.dtype == torch.bfloat16 and torch.equal(got, want)
    want.float().square().sum().backward()
    got.float().square().sum().backward()
    assert kept.weight.grad.dtype == torch.float32
    assert torch.equal(kept.weight.grad, plain.weight.grad) and torch.equal(kept.bias.grad, plain.bias.grad)


def test_in_place_gradients_are_autocasts_numbers_in_one_kept_buffer():
    """With ``grad_in_place`` the fp32 gradient is written into one buffer per weight, reused after
    ``zero_grad(set_to_none=True)``, and a second backward adds to it as autograd would."""
    torch.manual_seed(0)
    plain = torch.nn.Linear(48, 32)
    kept = Linear(48, 32)
    kept.load_state_dict(plain.state_dict())
    casts = WeightCasts(grad_in_place=True)
    pointers = []
    for _ in range(2):  # two steps: the second reuses the first one's buffer
        plain.zero_grad(set_to_none=True)
        kept.zero_grad(set_to_none=True)
        for x in (torch.randn(8, 48), torch.randn(5, 48)):  # two backward passes accumulate
            with torch.autocast(**CPU_BF16):
                want = plain(x) + plain(2 * x)  # two uses of the weight in one phase
                with casts.phase():
                    got = kept(x) + kept(2 * x)
            assert torch.equal(got, want)
            want.float().square().sum().backward()
            got.float().square().sum().backward()
        assert kept.weight.grad.dtype == torch.float32 and kept.weight.grad.is_contiguous()
        assert torch.equal(kept.weight.grad, plain.weight.grad) and torch.equal(kept.bias.grad, plain.bias.grad)
        pointers.append(kept.weight.grad.data_ptr())
    assert pointers[0] == pointers[1]


def test_outside_a_phase_or_autocast_the_layer_is_torchs_linear():
    layer = Linear(6, 4)
    x = torch.randn(3, 6)
    assert cast_weight(layer.weight) is layer.weight
    with WeightCasts().phase():  # no autocast: fp32 as usual
        assert cast_weight(layer.weight) is layer.weight
        assert torch.equal(layer(x), torch.nn.functional.linear(x, layer.weight, layer.bias))


def test_a_frozen_weight_is_cast_once_until_it_changes():
    layer = Linear(6, 4).requires_grad_(False)
    casts = WeightCasts()
    with torch.autocast(**CPU_BF16):
        with casts.phase():
            first = cast_weight(layer.weight)
            assert cast_weight(layer.weight) is first  # the second pass reuses the cast
        with casts.phase():
            assert cast_weight(layer.weight).data_ptr() == first.data_ptr()  # and so does the next phase
        layer.weight.data.add_(1.0)  # as Adam's fused kernel: in place, the version unmoved
        casts.stale([layer.weight])
        with casts.phase():
            fresh = cast_weight(layer.weight)
            assert torch.equal(fresh, layer.weight.to(torch.bfloat16))
            assert fresh.data_ptr() == first.data_ptr()  # rewritten in place, not allocated anew
        with torch.no_grad():
            layer.weight.mul_(2.0)  # a visible in-place change (a load) is seen without being told
        with casts.phase():
            assert torch.equal(cast_weight(layer.weight), layer.weight.to(torch.bfloat16))


def test_training_with_kept_copies_gives_autocasts_weights_to_the_bit(tmp_path, tiny_config, blobs):
    """The recipe's whole objective, four steps under bf16 autocast: the engine with its kept copies
    (refreshed after each optimizer step) and the engine with autocast's casts alone end equal."""
    cfg = tiny_config("train.precision=bf16", "train.steps=4")
    states = []
    for keep in (True, False):
        tr = Trainer(cfg, out_dir=tmp_path / str(keep), progress=False, data=blobs, force=True)
        tr._setup()
        if keep:
            assert tr.weight_casts is not None
        else:
            tr.weight_casts = None
        for _ in range(4):
            tr.train_step()
        if keep:  # G's copies went stale with G's step; D's trunk's is current for the next D phase
            trunk_fc = [m.weight for m in tr.model.trunk if isinstance(m, Linear)]
            current = [id(w) for w, version, _ in tr.weight_casts._copies.values() if version is not None]
            assert current == [id(w) for w in trunk_fc]
        states.append(tr.model.state_dict())
    kept, plain = states
    assert all(torch.equal(kept[k], plain[k]) for k in kept)

"""ApproxBit binary codec: exact bit-packed wire format, straight-through binarisation, shapes
with and without the spatial encoder, codebook decoding, Eq. 3 loss, and that training the codec
actually learns to reconstruct features through 1-bit codes."""
import zlib

import numpy as np
import pytest
import torch

from approxbit_ros.codec import (ApproxBitLoss, BinaryCodecConfig, BinaryDecoder, BinaryEncoder, BinaryPayload,
                                 PayloadError, binarize, pack_bits, unpack_bits)


@pytest.mark.parametrize("shape", [(1,), (7,), (8,), (16, 2, 7, 7), (3, 5, 3, 1)])
def test_bits_round_trip_exactly(shape):
    bits = np.random.default_rng(0).integers(0, 2, size=shape, dtype=np.uint8)
    data = pack_bits(bits)
    assert len(data) == (bits.size + 7) // 8
    np.testing.assert_array_equal(unpack_bits(data, shape), bits)
    p = BinaryPayload.from_bits(bits)
    assert p.crc32 == zlib.crc32(data)
    np.testing.assert_array_equal(p.decode(), bits)


def test_msb_first_layout():
    assert pack_bits(np.array([1, 0, 0, 0, 0, 0, 0, 1, 1])) == bytes([0b10000001, 0b10000000])


@pytest.mark.parametrize("mutate,match", [
    (lambda p: setattr(p, "data", p.data[:-1]), "CRC-32 mismatch"),
    (lambda p: (setattr(p, "data", p.data[:-1]), setattr(p, "crc32", zlib.crc32(p.data))), "bytes for"),
    (lambda p: setattr(p, "shape", (16, 2, 7, 8)), "bytes for"),
    (lambda p: setattr(p, "shape", (0, 2)), "invalid shape"),
    (lambda p: setattr(p, "shape", (1 << 20, 1 << 20)), "limit"),
    (lambda p: setattr(p, "encoding", 9), "unknown encoding"),
    (lambda p: setattr(p, "bit_order", 1), "unknown bit order"),
])
def test_inconsistent_payloads_are_rejected(mutate, match):
    p = BinaryPayload.from_bits(np.ones((16, 2, 7, 7), np.uint8))
    mutate(p)
    with pytest.raises(PayloadError, match=match):
        p.decode()


def test_nonzero_padding_is_rejected():
    data = bytes([0xFF])
    with pytest.raises(PayloadError, match="padding"):
        unpack_bits(data, (5,))


def test_float_payloads_for_the_baselines():
    x = np.random.default_rng(1).standard_normal((4, 2, 3, 3)).astype(np.float32)
    np.testing.assert_array_equal(BinaryPayload.from_floats(x, half=False).decode(), x)
    np.testing.assert_allclose(BinaryPayload.from_floats(x, half=True).decode(), x, atol=2e-3)
    assert len(BinaryPayload.from_floats(x, half=True).data) == x.size * 2


def test_binarize_thresholds_forward_and_passes_sigmoid_gradient():
    xp = torch.tensor([-2.0, -0.1, 0.1, 3.0], requires_grad=True)
    z = binarize(xp)
    assert z.tolist() == [0.0, 0.0, 1.0, 1.0]
    z.sum().backward()
    s = torch.sigmoid(xp.detach())
    torch.testing.assert_close(xp.grad, s * (1 - s))


@pytest.mark.parametrize("spatial,mixing", [(False, "depthwise"), (True, "depthwise"), (True, "dense")])
@pytest.mark.parametrize("thw", [(4, 8, 8), (5, 7, 7)])
def test_shapes_and_bits(spatial, mixing, thw):
    cfg = BinaryCodecConfig(channels=16, codebook_size=8, spatial_encoder=spatial, spatial_mixing=mixing)
    enc, dec = BinaryEncoder(cfg), BinaryDecoder(cfg)
    x = torch.randn(2, 16, *thw)
    z, xp = enc(x)
    expect = tuple((d + 1) // 2 for d in thw) if spatial else thw
    assert z.shape == (2, 8, *expect) and xp.shape == z.shape
    bits = enc.encode_bits(x)
    assert bits.dtype == torch.uint8 and torch.equal(bits.float(), z.detach())
    assert dec(z, thw).shape == x.shape
    ratio = x.numel() * 32 / bits.numel()           # float32 features vs 1-bit codes
    assert ratio == pytest.approx(32 * 16 / 8 * np.prod(thw) / np.prod(expect))
    assert ratio >= (64 if not spatial else 256)


def test_dense_spatial_encoder_mixes_channels_and_depthwise_does_not():
    """Each output channel of the depthwise spatial conv sees only its own input channel; the
    dense one sees all of them."""
    x = torch.randn(1, 8, 2, 4, 4, requires_grad=True)
    for mixing, want_channels in (("depthwise", 1), ("dense", 8)):
        enc = BinaryEncoder(BinaryCodecConfig(8, 4, spatial_encoder=True, spatial_mixing=mixing))
        x.grad = None
        enc.spatial(x)[0, 3].sum().backward()
        assert int((x.grad[0].abs().sum(dim=(1, 2, 3)) > 0).sum()) == want_channels, mixing


def test_unknown_spatial_mixing_is_rejected():
    with pytest.raises(ValueError, match="spatial_mixing"):
        BinaryEncoder(BinaryCodecConfig(8, 4, spatial_encoder=True, spatial_mixing="separable"))


def test_position_mean_is_removed_before_coding_and_restored_after():
    """With a position mean the codes depend only on x - mean (a clip equal to the mean codes
    like a zero clip), and a zero code decodes to the mean plus what zeros decode to without it."""
    torch.manual_seed(3)
    cfg = BinaryCodecConfig(8, 4, spatial_encoder=True, position_mean_shape=(2, 4, 4))
    enc, dec = BinaryEncoder(cfg).eval(), BinaryDecoder(cfg).eval()
    mean = torch.randn(1, 8, 2, 4, 4) * 5
    enc.position_mean.copy_(mean)
    dec.position_mean.copy_(mean)
    x = torch.randn(2, 8, 2, 4, 4)
    plain = BinaryEncoder(BinaryCodecConfig(8, 4, spatial_encoder=True)).eval()
    plain.load_state_dict({k: v for k, v in enc.state_dict().items() if k != "position_mean"})
    assert torch.equal(enc.encode_bits(x + mean), plain.encode_bits(x))
    z = torch.zeros(1, 4, 1, 2, 2)
    bare = BinaryDecoder(BinaryCodecConfig(8, 4, spatial_encoder=True)).eval()
    bare.load_state_dict({k: v for k, v in dec.state_dict().items() if k != "position_mean"})
    with torch.no_grad():
        torch.testing.assert_close(dec(z, (2, 4, 4)), bare(z, (2, 4, 4)) + mean)
    assert "position_mean" not in plain.state_dict()          # old checkpoints load unchanged
    with pytest.raises(ValueError, match="position mean"):
        enc.encode_bits(torch.randn(1, 8, 4, 4, 4))


def test_codebook_is_the_first_decoding_step():
    """The decoder's first step maps each code vector to the codebook columns it selects: what the
    decoder's first block receives, captured by a hook on the real decoder, is M z."""
    torch.manual_seed(0)
    cfg = BinaryCodecConfig(channels=4, codebook_size=3)
    dec = BinaryDecoder(cfg).eval()
    seen = []
    dec.res1.register_forward_hook(lambda _m, args, _out: seen.append(args[0].detach().clone()))
    z = torch.zeros(1, 3, 2, 2, 2)
    z[0, 1, 0] = 1                                    # code (0, 1, 0) at t = 0
    z[0, :, 1] = 1                                    # code (1, 1, 1) at t = 1
    with torch.no_grad():
        dec(z)
    (first,) = seen
    m = dec.codebook.detach()
    torch.testing.assert_close(first[0, :, 0, 1, 1], m[:, 1])
    torch.testing.assert_close(first[0, :, 1, 0, 0], m.sum(1))


def test_loss_terms_match_eq3():
    torch.manual_seed(0)
    logits, labels = torch.randn(4, 5), torch.tensor([0, 1, 2, 3])
    f, r, xp = torch.randn(4, 3), torch.randn(4, 3), torch.randn(4, 6)
    total, parts = ApproxBitLoss(1.0, 1.0)(logits, labels, f, r, xp)
    s = torch.sigmoid(xp)
    bce = -(torch.round(s) * torch.log(s) + (1 - torch.round(s)) * torch.log(1 - s)).mean()
    expect = torch.nn.functional.cross_entropy(logits, labels) + ((f - r) ** 2).mean() + bce
    torch.testing.assert_close(total, expect)
    assert set(parts) == {"task", "recon", "binary"}
    only_task, _ = ApproxBitLoss(0.0, 0.0)(logits, labels, f, r, xp)
    torch.testing.assert_close(only_task, torch.nn.functional.cross_entropy(logits, labels))


def test_training_through_one_bit_codes_reconstructs_structured_features():
    """Features living on a few directions are learnable through K bits; the reconstruction
    error must fall well below the feature variance."""
    torch.manual_seed(0)
    basis = torch.randn(16, 4)
    cfg = BinaryCodecConfig(channels=16, codebook_size=8)
    enc, dec = BinaryEncoder(cfg), BinaryDecoder(cfg)
    opt = torch.optim.Adam(list(enc.parameters()) + list(dec.parameters()), lr=3e-3)

    def sample():
        coeff = torch.randint(0, 2, (8, 4, 2, 4, 4)).float() * 2 - 1
        return torch.einsum("dk,bkthw->bdthw", basis, coeff)

    for _ in range(250):
        x = sample()
        z, xp = enc(x)
        loss = torch.nn.functional.mse_loss(dec(z), x)
        opt.zero_grad()
        loss.backward()
        opt.step()
    x = sample()
    with torch.no_grad():
        err = torch.nn.functional.mse_loss(dec(enc.encode_bits(x).float()), x)
    assert err < 0.05 * x.var()


def test_attention_reduces_keys_on_large_maps_only():
    from approxbit_ros.codec.binary_codec import SelfAttention3d

    attn = SelfAttention3d(8, heads=2, max_kv=64)
    small, large = torch.randn(1, 8, 2, 4, 4), torch.randn(1, 8, 8, 8, 8)
    assert attn(small).shape == small.shape and attn(large).shape == large.shape
    seen = []
    hook = attn.attn.register_forward_hook(lambda m, inp, out: seen.append((inp[0].shape[1], inp[1].shape[1])))
    attn(small)
    attn(large)
    hook.remove()
    assert seen == [(32, 32), (512, 64)]     # queries full resolution, keys pooled to <= 64

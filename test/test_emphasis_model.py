"""Emphasis-Assignment model: logits on the macroblock grid for any frame size and D, and
save/load round trip through safetensors."""
import numpy as np
import pytest
import torch

from how2compress_ros.emphasis.model import EmphasisModel, EmphasisModelConfig


@pytest.mark.parametrize("downsample", [1, 2, 4])
@pytest.mark.parametrize("height,width", [(96, 160), (90, 170), (144, 176)])
def test_logits_cover_the_macroblock_grid(downsample, height, width):
    torch.manual_seed(0)
    model = EmphasisModel(EmphasisModelConfig(downsample=downsample)).eval()
    rgb = np.random.default_rng(0).integers(0, 256, size=(height, width, 3), dtype=np.uint8)
    levels = model.predict_levels(rgb)
    assert levels.shape == ((height + 15) // 16, (width + 15) // 16)
    # the levels are the argmax of the model's logits for the frame as RGB in [0, 1] (channel order and
    # scaling done here by hand, not by the model's own pre-processing)
    x = torch.from_numpy(rgb).permute(2, 0, 1)[None].float() / 255.0
    with torch.no_grad():
        want = model(x).argmax(1)[0].numpy()
    assert levels.dtype == np.uint8 and np.array_equal(levels, want)


def test_gradients_reach_backbone_and_head():
    model = EmphasisModel(EmphasisModelConfig(downsample=2))
    logits = model(torch.rand(2, 3, 64, 96))
    assert logits.shape == (2, 5, 4, 6)
    logits.logsumexp(1).mean().backward()
    assert model.head.weight.grad.abs().sum() > 0
    assert model.backbone.conv_stem.convolution.weight.grad.abs().sum() > 0


def test_save_and_load_give_identical_predictions(tmp_path):
    torch.manual_seed(1)
    model = EmphasisModel(EmphasisModelConfig(downsample=2, levels=5)).eval()
    with torch.no_grad():
        model.head.bias.copy_(torch.tensor([0.0, 0.5, -0.5, 1.0, 0.2]))
    model.save_pretrained(str(tmp_path), extra={"trained_by": "test"})
    loaded = EmphasisModel.from_pretrained(str(tmp_path))
    x = torch.rand(1, 3, 64, 64)
    torch.testing.assert_close(model(x), loaded(x))
    assert loaded.config.downsample == 2


def test_bad_config_and_missing_files_are_clear(tmp_path):
    with pytest.raises(ValueError, match=r"downsample D must be in \[1, 4\]"):
        EmphasisModel(EmphasisModelConfig(downsample=5))
    with pytest.raises(FileNotFoundError, match="config.json and model.safetensors"):
        EmphasisModel.from_pretrained(str(tmp_path))


def test_from_scratch_init_passes_the_input_to_the_head():
    """transformers' init (BatchNorm weights ~N(0, 0.02)) all but erases the input by stride 16
    (about 1e-40 in eval mode); the from-scratch init keeps features that differ between images."""
    torch.manual_seed(0)
    x = torch.rand(2, 3, 128, 128)

    def feature_spread(init):
        model = EmphasisModel(EmphasisModelConfig(downsample=1, init=init)).eval()
        with torch.no_grad():
            f = model._features(x)
        return (f[0] - f[1]).abs().mean().item()

    assert feature_spread("kaiming") > 0.1
    assert feature_spread("hf") < 1e-6
    with pytest.raises(ValueError):
        EmphasisModel(EmphasisModelConfig(init="xavier"))

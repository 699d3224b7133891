"""The networks as specified, built at full size with random weights; their inputs; the optimizer options."""

import dataclasses

import numpy as np
import pytest

from fvc_assets.train.models.deep import (IMAGENET_MEAN, KINETICS_MEAN, balanced_batches, lr_factor, make_optimizer,
                                          training_clips)
from fvc_assets.train.models.registry import build_model
from fvc_core.train_settings import DEMO_SETTINGS, FULL_SETTINGS

FULL = dataclasses.replace(FULL_SETTINGS, pretrained=False, device="cpu")


def layers_of(module, kind):
    return [m for m in module.modules() if isinstance(m, kind)]


def test_naive_cnn_has_the_specified_blocks_and_head():
    from torch import nn

    net = build_model("naive_cnn", FULL).network()
    convs = layers_of(net.features, nn.Conv2d)
    assert [(c.in_channels, c.out_channels) for c in convs] == [(3, 32), (32, 64), (64, 128)]
    assert [b.num_features for b in layers_of(net.features, nn.BatchNorm2d)] == [32, 64, 128]
    assert len(layers_of(net.features, nn.ReLU)) == 3
    head = list(net.head)
    assert [type(m) for m in head] == [nn.Linear, nn.ReLU, nn.Dropout, nn.Linear]
    assert (head[0].in_features, head[0].out_features, head[2].p, head[3].in_features, head[3].out_features) == (
        128, 64, 0.5, 64, 1)


def test_vit_transformer_is_768_wide_8_heads_2_layers_ff_2048_dropout_half():
    from torch import nn

    net = build_model("vit_transformer", FULL).network()
    assert net.backbone.num_features == 768 and net.backbone.patch_embed.img_size == (256, 256)
    layers = list(net.temporal.layers)
    assert len(layers) == 2
    for layer in layers:
        assert layer.self_attn.embed_dim == 768 and layer.self_attn.num_heads == 8
        assert (layer.linear1.in_features, layer.linear1.out_features) == (768, 2048)
        assert layer.dropout.p == 0.5 and layer.self_attn.dropout == 0.5
    assert isinstance(net.head, nn.Linear) and (net.head.in_features, net.head.out_features) == (768, 1)
    assert not any(isinstance(m, nn.Linear) and m.out_features == 256 for m in net.modules())  # no projection


def test_vit_gru_is_a_two_layer_gru_of_256_over_vit_b16():
    net = build_model("vit_gru", FULL).network()
    assert (net.gru.input_size, net.gru.hidden_size, net.gru.num_layers) == (768, 256, 2)
    assert (net.head.in_features, net.head.out_features) == (256, 1)


def test_the_vit_patch_side_and_depth_are_settings_for_random_weights_only():
    small = dataclasses.replace(DEMO_SETTINGS, vit_patch_size=8, vit_depth=4, pretrained=False, device="cpu")
    own = dataclasses.replace(small, vit_patch_size=0, vit_depth=0)
    for model in ("vit_gru", "vit_transformer"):
        backbone = build_model(model, small).network().backbone
        assert backbone.patch_embed.grid_size == (small.image_size // 8,) * 2 and len(backbone.blocks) == 4
        backbone = build_model(model, own).network().backbone
        assert backbone.patch_embed.grid_size == (small.image_size // 16,) * 2 and len(backbone.blocks) == 12
    with pytest.raises(ValueError, match="pretrained weights fit only its own"):
        build_model("vit_gru", dataclasses.replace(small, pretrained=True)).network()


def test_slowfast_slow_path_sees_at_least_four_frames():
    from torch import nn

    for settings, fast, slow in ((FULL, 32, 8), (DEMO_SETTINGS, 8, 4)):
        model = build_model("slowfast", settings)
        assert (model.frame_count, model.slow_frames) == (fast, slow)
    net = build_model("slowfast", FULL).network()
    pools = [m.kernel_size for m in net.modules() if type(m).__name__ == "AvgPool3d"]
    assert (8, 8, 8) in pools and (32, 8, 8) in pools
    # The stems' channels: as published at full width (slow 64, fast 8); the demo's SlowFast at half width.
    for settings, stems in ((FULL, [8, 64]), (DEMO_SETTINGS, [4, 32])):
        built = build_model("slowfast", settings).network()
        assert sorted(m.out_channels for m in built.modules()
                      if isinstance(m, nn.Conv3d) and tuple(m.kernel_size[1:]) == (7, 7)) == stems
    with pytest.raises(ValueError, match="at least 4 frames"):
        build_model("slowfast", dataclasses.replace(FULL, slowfast_frames=8)).network()


def test_slowfast_scores_a_clip_of_its_frame_count():
    import torch

    model = build_model("slowfast", dataclasses.replace(DEMO_SETTINGS, image_size=32, device="cpu"))
    model.net = model.network().eval()
    with torch.no_grad():
        logits = model.forward(torch.randn(2, model.frame_count, 3, 32, 32))
    assert logits.shape == (2,)


def test_x3d_is_x3d_m_and_names_x3d_m_weights():
    model = build_model("x3d", FULL)
    assert model.hub_url.endswith("/X3D_M.pyth")
    assert build_model("x3d", DEMO_SETTINGS).hub_url is None  # no published weights at the demo's width
    net = model.network()
    stages = [len(list(block.res_blocks)) for block in net.blocks[1:5]]
    assert stages == [3, 5, 11, 7]  # X3D-M's depths (depth factor 2.2)
    assert net.blocks[1].res_blocks[0].branch2.conv_a.out_channels == 54  # 24 * 2.25 (bottleneck of X3D-M)


def test_each_network_normalises_as_its_weights_were_trained():
    import timm

    assert build_model("naive_cnn", FULL).normalisation()[0] == IMAGENET_MEAN
    assert build_model("x3d", FULL).normalisation()[0] == KINETICS_MEAN
    assert build_model("slowfast", FULL).normalisation()[0] == KINETICS_MEAN
    vit_mean = tuple(timm.get_pretrained_cfg("vit_base_patch16_224").mean)
    assert build_model("vit_gru", FULL).normalisation()[0] == vit_mean


def test_weights_paths_are_per_model(tmp_path):
    import torch

    settings = dataclasses.replace(DEMO_SETTINGS, device="cpu", image_size=32)
    source = build_model("x3d", settings).network()
    torch.save(source.state_dict(), tmp_path / "x3d.pth")
    both = dataclasses.replace(settings, pretrained=True, weights_paths={"x3d": str(tmp_path / "x3d.pth"),
                                                                        "slowfast": str(tmp_path / "sf.pth")})
    loaded = build_model("x3d", both).network()
    assert all(torch.equal(loaded.state_dict()[k], v) for k, v in source.state_dict().items())
    from fvc_assets.train.models.deep import PretrainedWeightsError

    with pytest.raises(PretrainedWeightsError, match="sf.pth"):  # slowfast looks at its own file, not x3d's
        build_model("slowfast", both).network()


def test_adam_by_default_adamw_on_request():
    import torch

    net = torch.nn.Linear(3, 1)
    assert type(make_optimizer(net, FULL, "x3d")) is torch.optim.Adam
    adamw = make_optimizer(net, dataclasses.replace(FULL, optimizer="adamw"), "x3d")
    assert type(adamw) is torch.optim.AdamW and adamw.param_groups[0]["weight_decay"] == 1e-4
    assert (FULL.lr, FULL.weight_decay) == (1e-4, 1e-4)
    with pytest.raises(ValueError, match="optimizer 'sgd'"):
        dataclasses.replace(FULL, optimizer="sgd")


def test_a_model_can_have_its_own_learning_rate():
    import torch

    settings = dataclasses.replace(FULL, lr=1e-3, lr_by_model={"vit_gru": 3e-4})
    net = torch.nn.Linear(3, 1)
    assert make_optimizer(net, settings, "vit_gru").param_groups[0]["lr"] == 3e-4
    assert make_optimizer(net, settings, "x3d").param_groups[0]["lr"] == 1e-3


def test_cosine_schedule_with_warm_up():
    factors = [lr_factor(step, 100, 10, "cosine") for step in range(100)]
    assert factors[0] == pytest.approx(0.1) and factors[9] == pytest.approx(1.0)
    assert factors[10] == pytest.approx(1.0) and factors[55] == pytest.approx(0.5, abs=0.02)
    assert all(a >= b for a, b in zip(factors[10:], factors[11:])) and factors[-1] < 0.01
    assert lr_factor(50, 100, 0, "constant") == 1.0


def test_balanced_batches_are_half_real_half_fake():
    import torch

    labels = np.array([0] * 30 + [1] * 6)
    batches = balanced_batches(labels, 8, torch.Generator().manual_seed(0))
    assert len(batches) == 5
    for batch in batches:
        assert int(labels[batch].sum()) == 4 and len(batch) == 8
    again = balanced_batches(labels, 8, torch.Generator().manual_seed(0))
    assert batches == again


def test_training_clips_take_the_originals_and_up_to_n_augmented_clips_per_video():
    import polars as pl

    train = pl.DataFrame({
        "video_id": [v for v in ("a", "b") for _ in range(4)],
        "clip_id": [f"{v}_{i}" for v in ("a", "b") for i in range(4)],
        "augmentation": ["original", "blur", "crop", "noise"] * 2,
        "scaled_path": [f"{v}_{i}.mp4" for v in ("a", "b") for i in range(4)],
    })
    for per_video in (0, 1, 3, 5):
        clips = training_clips(train, per_video, seed=0)
        assert clips["scaled_path"].null_count() == 0
        assert clips.filter(pl.col("augmentation") == "original")["video_id"].to_list() == ["a", "b"]
        counts = clips.filter(pl.col("augmentation") != "original")["video_id"].value_counts()
        assert dict(counts.iter_rows()) == ({} if per_video == 0 else {"a": min(per_video, 3), "b": min(per_video, 3)})
    assert training_clips(train, 1, seed=0).equals(training_clips(train, 1, seed=0))

"""The one place the benchmarks build a peer library's model: diffusers' UNet2DModel as kgen's UNet."""


def diffusers_unet(config):
    """diffusers' `UNet2DModel` with the architecture of kgen's UNet of `config` (`UNet.get_config()`), in eval mode.

    The same widths, residual blocks per level, attention levels, groups and
    class embedding (plus the null class); AdaGN maps to diffusers'
    `scale_shift` time conditioning. Needs `pip install -e ".[bench]"`.
    """
    from diffusers import UNet2DModel

    height, _, channels = config["image_shape"]
    sizes = [height // 2**level for level in range(len(config["widths"]))]
    attention = [size <= config["attention_resolution"] for size in sizes]
    return UNet2DModel(
        sample_size=height, in_channels=channels, out_channels=channels, block_out_channels=tuple(config["widths"]),
        layers_per_block=config["num_res_blocks"],
        down_block_types=tuple("AttnDownBlock2D" if a else "DownBlock2D" for a in attention),
        up_block_types=tuple("AttnUpBlock2D" if a else "UpBlock2D" for a in reversed(attention)),
        norm_num_groups=config["groups"], attention_head_dim=config["widths"][-1],
        num_class_embeds=config["num_classes"] + 1 if config["num_classes"] else None,
        resnet_time_scale_shift="scale_shift" if config.get("adaptive_norm") else "default").eval()

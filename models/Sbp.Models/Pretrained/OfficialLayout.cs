namespace Sbp.Models.Pretrained;

/// <summary>The official implementations whose state dicts our models load, by <see cref="OfficialWeights"/>.</summary>
public enum OfficialLayout
{
    /// <summary>
    /// SwinTransformer/Video-Swin-Transformer (mmaction Recognizer3D): "backbone.*" and "cls_head.fc_cls.*" into a
    /// <see cref="Architectures.VideoSwinTransformer"/>; "relative_position_index" buffers are checked, not loaded.
    /// </summary>
    VideoSwin,

    /// <summary>
    /// HF transformers VideoMAEForVideoClassification (mean pooling): "videomae.*", "fc_norm.*", "classifier.*" into a
    /// <see cref="Architectures.VideoVit"/> built with sinusoidal positions and mean pooling; query, key and value fuse
    /// into qkv, q_bias and v_bias into its bias with a zero k part.
    /// </summary>
    VideoMae,

    /// <summary>torchvision's ResNet into a frame detector's <see cref="Architectures.FrameDetector.ResNetBackbone"/>; "fc.*" is not used.</summary>
    TorchvisionResNet,

    /// <summary>torchvision's video R(2+1)D into a <see cref="Architectures.VideoResNet"/>, names unchanged.</summary>
    TorchvisionVideoResNet,
}

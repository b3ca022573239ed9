namespace Sbp.Models.Architectures;

/// <summary>
/// Which relative position bias a Video Swin window attention uses when a feature map is smaller
/// than the window in H or W (the effective window then shrinks, Video Swin's get_window_size).
/// </summary>
public enum SwinBiasIndex
{
    /// <summary>
    /// The official code (mmaction swin_transformer.py, WindowAttention3D.forward):
    /// <c>relative_position_index[:N, :N]</c> of the configured window, the first N tokens of the full
    /// window, whose offsets are not those of the smaller window's tokens when H or W shrank (T alone is
    /// exact). Needed to compute what official checkpoints were trained with (Swin-T at 112 px, stage 4).
    /// </summary>
    Official,

    /// <summary>The smaller window's true offsets: every pair of tokens reads the table row of its own (dt, dh, dw).</summary>
    TrueOffsets,
}

/// <summary>What Video Swin's patch merging does after a stage whose token grid is at most 2 x 2.</summary>
public enum SwinSmallGridMerge
{
    /// <summary>The official code: always merge 2 x 2 neighbours (padded to even), LayerNorm(4C), Linear(4C, 2C).</summary>
    Official,

    /// <summary>
    /// Keep the grid and only widen the channels there, LayerNorm(C), Linear(C, 2C): merging a 2 x 2 grid into one
    /// token gives each quadrant its own weights and the mean-pooled head loses translation equivariance
    /// (swin-micro on 32 px clips did not learn the synthetic task with the official merge). Official
    /// checkpoints do not load into such a downsample (its weights have C, not 4C, inputs).
    /// </summary>
    WidenChannels,
}

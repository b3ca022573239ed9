namespace Sbp.Models.Architectures;

/// <summary>How a video ViT knows where a token is.</summary>
public enum VitPositions
{
    /// <summary>A learned embedding "pos_embed" [1, (CLS +) N, C] (ViViT, TimeSformer).</summary>
    Learned,

    /// <summary>
    /// The fixed sinusoid table of VideoMAE (HF modeling_videomae.py, get_sinusoid_encoding_table): for token p and
    /// channel j, p / 10000^(2 floor(j/2) / C), sine on even j, cosine on odd j; not a parameter.
    /// </summary>
    Sinusoidal,
}

/// <summary>What a video ViT classifies.</summary>
public enum VitPooling
{
    /// <summary>A CLS token in front of the patch tokens; "norm" on the sequence, the head reads the CLS token.</summary>
    ClsToken,

    /// <summary>VideoMAE's use_mean_pooling: no CLS token and no final "norm"; the mean of the tokens, then "fc_norm", then the head.</summary>
    MeanFcNorm,
}

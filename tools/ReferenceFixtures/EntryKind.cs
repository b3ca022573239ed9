namespace Sbp.Tools.ReferenceFixtures;

/// <summary>What a state-dict entry is; it decides the random values the entry gets and whether it has a gradient.</summary>
internal enum EntryKind
{
    /// <summary>Linear or convolution weight: N(0, 1/sqrt(fan_in)).</summary>
    Weight,
    /// <summary>Linear or convolution bias: N(0, 0.5).</summary>
    Bias,
    /// <summary>LayerNorm or BatchNorm scale: 1 + N(0, 0.3).</summary>
    NormWeight,
    /// <summary>LayerNorm or BatchNorm shift: N(0, 0.3).</summary>
    NormBias,
    /// <summary>Swin relative_position_bias_table: N(0, 1), large so that a wrong index shows.</summary>
    BiasTable,
    /// <summary>VideoMAE q_bias / v_bias: N(0, 0.5).</summary>
    QvBias,
    /// <summary>BatchNorm running_mean buffer: N(0, 0.3).</summary>
    RunningMean,
    /// <summary>BatchNorm running_var buffer: uniform(0.5, 1.5).</summary>
    RunningVar,
    /// <summary>Integer buffer with fixed contents (Swin relative_position_index).</summary>
    Index,
}

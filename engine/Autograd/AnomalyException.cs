using Sbp.Tensors;

namespace Sbp.Autograd;

/// <summary>Where anomaly mode found a non-finite value.</summary>
public enum AnomalyPhase
{
    /// <summary>In an op's output, as the op ran.</summary>
    Forward,
    /// <summary>In a gradient a node's backward rule returned for one of its inputs.</summary>
    Backward,
}

/// <summary>
/// Anomaly mode (<see cref="Tape.DetectAnomalies"/>) found NaN or Inf: the first op whose output
/// (forward) or returned input gradient (backward) is not finite. The message names the op, its
/// input shapes, the shape of the bad tensor, how many values are NaN/Inf and the first one, the
/// SBP region the op ran in (if any) and a hint.
/// </summary>
public sealed class AnomalyException : ArithmeticException
{
    internal AnomalyException(string message, AnomalyPhase phase, string op, IReadOnlyList<Shape> inputShapes,
        Shape tensorShape, int? inputIndex, long nanCount, long infCount, long firstIndex, string? region) : base(message)
    {
        Phase = phase;
        Op = op;
        InputShapes = inputShapes;
        TensorShape = tensorShape;
        InputIndex = inputIndex;
        NaNCount = nanCount;
        InfCount = infCount;
        FirstIndex = firstIndex;
        Region = region;
    }

    public AnomalyPhase Phase { get; }

    /// <summary>The op name as recorded on the tape ("log", "div", "sqrt", ...).</summary>
    public string Op { get; }

    public IReadOnlyList<Shape> InputShapes { get; }

    /// <summary>Shape of the non-finite tensor: the op's output (forward) or the gradient of input <see cref="InputIndex"/> (backward).</summary>
    public Shape TensorShape { get; }

    /// <summary>Backward: which input's gradient is not finite; null in forward.</summary>
    public int? InputIndex { get; }

    public long NaNCount { get; }
    public long InfCount { get; }
    public long NonFiniteCount => NaNCount + InfCount;

    /// <summary>Flat row-major index of the first non-finite value.</summary>
    public long FirstIndex { get; }

    /// <summary>The SBP region the op was recorded in, or null.</summary>
    public string? Region { get; }
}

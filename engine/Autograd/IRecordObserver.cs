using Sbp.Tensors;

namespace Sbp.Autograd;

/// <summary>
/// Watches the ops that run on one tape while it is active on this thread (an SBP region's trace): it sees
/// every op, recorded or not, with the op's <see cref="IOpRule"/>, and every node recorded. With
/// <see cref="ITapeExtension"/> and <see cref="ICompactForm"/>, the whole of what autograd knows of SBP.
/// </summary>
internal interface IRecordObserver
{
    /// <summary>The tape whose ops it watches.</summary>
    Tape Tape { get; }

    /// <summary>A name for messages (the region's).</summary>
    string Name { get; }

    /// <summary>Called for every op; returns what <see cref="OnRecorded"/> receives for its node, or throws to refuse the op.</summary>
    object? OnOp(string op, Tensor output, Tensor[] inputs, Tensor?[] save, IOpRule? rule);

    /// <summary>Called for each node recorded while the observer is active.</summary>
    void OnRecorded(TapeNode node, object? plan);
}

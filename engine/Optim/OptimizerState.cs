using Sbp.Tensors;

namespace Sbp.Optim;

/// <summary>
/// An optimizer's state: named tensors ("exp_avg.&lt;param name&gt;", "momentum_buffer.&lt;param name&gt;")
/// and named scalars ("step", "lr", "step.&lt;param name&gt;", ...). From <see cref="Optimizer.StateDict"/>
/// the tensors are the optimizer's live buffers (not copies): read or save them, do not dispose them.
/// </summary>
public sealed record OptimizerState(IReadOnlyDictionary<string, Tensor> Tensors, IReadOnlyDictionary<string, double> Scalars);

/// <summary>Optimizer state that does not fit an optimizer; lists every problem (nothing was loaded).</summary>
public sealed class OptimizerStateMismatchException(string optimizer, IReadOnlyList<string> problems)
    : Exception($"{optimizer}.LoadStateDict: the state does not fit this optimizer ({problems.Count} problem{(problems.Count == 1 ? "" : "s")}; nothing was loaded):\n  " + string.Join("\n  ", problems))
{
    public IReadOnlyList<string> Problems { get; } = problems;
}

using Sbp.Tensors;

namespace Sbp.Optim;

/// <summary>
/// A set of named parameters optimized with the same hyperparameters. <see cref="LearningRate"/>
/// and <see cref="WeightDecay"/> override the optimizer's values when set; the effective learning
/// rate is <c>LearningRate ?? optimizer.LearningRate * LearningRateScale</c>, so a schedule that sets
/// <see cref="Optimizer.LearningRate"/> moves every group without an explicit rate (scaled groups
/// follow it proportionally; groups with an explicit rate keep it).
/// </summary>
public sealed class ParamGroup
{
    public ParamGroup(IEnumerable<(string Name, Tensor Tensor)> parameters, float? learningRate = null, float? weightDecay = null,
        float learningRateScale = 1f, string? name = null)
    {
        Parameters = parameters.ToList();
        LearningRate = learningRate;
        WeightDecay = weightDecay;
        LearningRateScale = learningRateScale;
        Name = name ?? "";
    }

    /// <summary>A label for messages ("decay", "no_decay", ...).</summary>
    public string Name { get; }

    public IReadOnlyList<(string Name, Tensor Tensor)> Parameters { get; }

    /// <summary>A fixed learning rate for this group, or null to follow the optimizer's.</summary>
    public float? LearningRate { get; set; }

    /// <summary>Multiplies the optimizer's learning rate when <see cref="LearningRate"/> is null.</summary>
    public float LearningRateScale { get; set; }

    /// <summary>This group's weight decay, or null for the optimizer's.</summary>
    public float? WeightDecay { get; set; }

    /// <summary>
    /// Splits named parameters into a "decay" group (weight decay <paramref name="weightDecay"/>) and a
    /// "no_decay" group (weight decay 0): parameters of rank &lt;= 1 (biases, norm scales and shifts)
    /// and the names in <paramref name="noDecayNames"/> (exact names, e.g. position embeddings) get no
    /// decay. Order within each group follows the input. Empty groups are kept (they cost nothing).
    /// </summary>
    public static ParamGroup[] SplitDecay(IEnumerable<(string Name, Tensor Tensor)> parameters, float weightDecay,
        IEnumerable<string>? noDecayNames = null)
    {
        var names = new HashSet<string>(noDecayNames ?? [], StringComparer.Ordinal);
        return SplitDecay(parameters, weightDecay, names.Contains);
    }

    /// <summary>As the other overload, with a predicate over names choosing extra no-decay parameters.</summary>
    public static ParamGroup[] SplitDecay(IEnumerable<(string Name, Tensor Tensor)> parameters, float weightDecay,
        Func<string, bool> noDecay)
    {
        var decay = new List<(string, Tensor)>();
        var none = new List<(string, Tensor)>();
        foreach (var (n, t) in parameters)
        {
            if (t.Rank <= 1 || noDecay(n)) none.Add((n, t));
            else decay.Add((n, t));
        }
        return [new ParamGroup(decay, weightDecay: weightDecay, name: "decay"), new ParamGroup(none, weightDecay: 0f, name: "no_decay")];
    }

    public override string ToString() =>
        $"ParamGroup '{Name}' ({Parameters.Count} tensors{(LearningRate is { } lr ? $", lr {lr}" : "")}{(WeightDecay is { } wd ? $", weight decay {wd}" : "")})";
}

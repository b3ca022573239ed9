using Sbp.Autograd;
using Sbp.Tensors;

namespace Sbp.OpCases;

/// <summary>
/// One op case of <see cref="OpTable"/>: either a forward through autograd (<see cref="Forward"/>: its
/// results are y and the gradient of every leaf for loss = sum(y * R) with a fixed R) or a case without
/// autograd (<see cref="Plain"/>: it names its own results). Devices agree within atol + rtol * |cpu|.
/// </summary>
/// <param name="Name">What the case runs, e.g. "matmul (batched)": the test name on every device.</param>
/// <param name="Forward">The op(s) on the case's inputs, for a gradient case.</param>
/// <param name="Plain">The results of a case without autograd.</param>
/// <param name="Rtol">Relative tolerance of a device against the CPU.</param>
/// <param name="Atol">Absolute tolerance of a device against the CPU.</param>
/// <param name="BackwardIsDerivative">False where the backward is deliberately not the forward's derivative
/// (SBP's gradient mask): finite differences do not apply; the SBP oracle tests check it instead.</param>
public sealed record OpCase(string Name, Func<CaseInputs, Tensor>? Forward, Func<CaseInputs, IEnumerable<(string What, float[] Values)>>? Plain,
    double Rtol = 1e-4, double Atol = 1e-5, bool BackwardIsDerivative = true)
{
    /// <summary>A gradient case a finite-difference check applies to.</summary>
    public bool HasFiniteDifferenceCheck => Forward is not null && BackwardIsDerivative;

    /// <summary>Runs the case on <paramref name="device"/>: its named results, copied to the host.</summary>
    public IReadOnlyList<(string What, float[] Values)> Run(Device device)
    {
        using var scope = TensorScope.Begin();
        var inputs = new CaseInputs(device);
        if (Plain is not null) return Plain(inputs).ToList();
        var results = new List<(string, float[])>();
        using (var tape = Tape.Begin())
        {
            var y = Forward!(inputs);
            results.Add(("y", y.ToArray()));
            if (inputs.Leaves.Count > 0)
            {
                var loss = Ops.Sum(Ops.Mul(y, Tensor.FromArray(Cotangent(checked((int)y.Numel)), y.Shape, device)));
                tape.Backward(loss);
            }
        }
        foreach (var (leaf, t) in inputs.Leaves) results.Add((leaf, t.Grad?.ToArray() ?? []));
        return results;
    }

    /// <summary>The leaves' shapes and seeded values (made on <paramref name="device"/>), for a gradient check that perturbs them.</summary>
    public IReadOnlyList<(int[] Shape, float[] Values)> Leaves(Device device)
    {
        if (Forward is null) return [];
        using var scope = TensorScope.Begin();
        using var noGrad = Tape.NoGrad();
        var inputs = new CaseInputs(device);
        Forward(inputs);
        return inputs.Leaves.Select(l => (l.Tensor.Shape.ToArray(), l.Tensor.ToArray())).ToList();
    }

    /// <summary>R of loss = sum(y * R): |R| in [0.5, 1.5) with random signs, the same on every device.</summary>
    static float[] Cotangent(int n)
    {
        var r = new Random(7);
        var weights = new float[n];
        for (int i = 0; i < weights.Length; i++) weights[i] = (float)(0.5 + r.NextDouble()) * (r.Next(2) == 0 ? -1 : 1);
        return weights;
    }

    public override string ToString() => Name;
}

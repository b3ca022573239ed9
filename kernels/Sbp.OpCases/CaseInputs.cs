using Sbp.Tensors;

namespace Sbp.OpCases;

/// <summary>
/// Seeded inputs for one op case: the n-th input has the same values on every device. Float inputs that
/// require grad are the case's leaves. Replaying (<see cref="Replaying"/>) hands out given tensors in their
/// place, so a gradient check can perturb the leaves while every other input stays as seeded.
/// </summary>
public sealed class CaseInputs
{
    int _next;
    readonly List<(string Name, Tensor Tensor)> _leaves = [];
    readonly IReadOnlyList<Tensor>? _replay;

    /// <summary>Inputs made on <paramref name="device"/> from the seeds.</summary>
    public CaseInputs(Device device) => Device = device;

    CaseInputs(IReadOnlyList<Tensor> leaves)
    {
        _replay = leaves;
        Device = leaves.Count > 0 ? leaves[0].Device : Device.Default;
    }

    /// <summary>Inputs whose leaves are <paramref name="leaves"/> (in the order the case asks for them); the rest seeded on their device.</summary>
    public static CaseInputs Replaying(IReadOnlyList<Tensor> leaves) => new(leaves);

    public Device Device { get; }

    /// <summary>The leaves made so far, named d0, d1, ... in order.</summary>
    public IReadOnlyList<(string Name, Tensor Tensor)> Leaves => _leaves;

    /// <summary>A float input uniform in [lo, hi); a leaf that requires grad when <paramref name="grad"/>.</summary>
    public Tensor F(int[] shape, float lo = -1f, float hi = 1f, bool grad = true) =>
        Input(shape, grad, (r, n) => Draw(n, () => (float)(lo + (hi - lo) * r.NextDouble())));

    /// <summary>A float leaf with |x| in [0.25, 1) and a random sign: no value near 0, where relu's derivative jumps.</summary>
    public Tensor AwayFromZero(int[] shape) =>
        Input(shape, true, (r, n) => Draw(n, () => (float)((0.25 + 0.75 * r.NextDouble()) * (r.Next(2) == 0 ? -1 : 1))));

    /// <summary>
    /// A float leaf of distinct values 0.05 apart (a shuffled grid in about [-n/40, n/40]): no two values are
    /// near a tie, so max and max pooling choose the same element on every device and under a small step.
    /// </summary>
    public Tensor Distinct(int[] shape) =>
        Input(shape, true, (r, n) =>
        {
            var order = Enumerable.Range(0, n).ToArray();
            r.Shuffle(order);
            return order.Select(k => (float)((k - (n - 1) / 2.0) * 0.05)).ToArray();
        });

    /// <summary>An Int32 input of values in [lo, hi).</summary>
    public Tensor I(int[] shape, int lo, int hi)
    {
        var r = new Random(1000 + _next++);
        var data = new int[Numel(shape)];
        for (int i = 0; i < data.Length; i++) data[i] = r.Next(lo, hi);
        return Tensor.FromArray(data, new Shape(shape), Device);
    }

    /// <summary>The next input: <paramref name="values"/>(its seeded generator, element count), or the replayed leaf in its place.</summary>
    Tensor Input(int[] shape, bool grad, Func<Random, int, float[]> values)
    {
        var r = new Random(1000 + _next++);
        if (grad && _replay is not null)
        {
            if (_leaves.Count >= _replay.Count)
                throw new InvalidOperationException($"CaseInputs: the case asks for leaf {_leaves.Count} but {_replay.Count} were given to replay.");
            var given = _replay[_leaves.Count];
            if (given.Shape != new Shape(shape))
                throw new InvalidOperationException($"CaseInputs: leaf {_leaves.Count} replayed with shape {given.Shape}; the case asks for {new Shape(shape)}.");
            _leaves.Add(($"d{_leaves.Count}", given));
            return given;
        }
        var t = Tensor.FromArray(values(r, Numel(shape)), new Shape(shape), Device);
        if (grad)
        {
            t.RequiresGrad = true;
            _leaves.Add(($"d{_leaves.Count}", t));
        }
        return t;
    }

    static float[] Draw(int n, Func<float> next)
    {
        var data = new float[n];
        for (int i = 0; i < n; i++) data[i] = next();
        return data;
    }

    static int Numel(int[] shape) => shape.Aggregate(1, (p, d) => checked(p * d));
}

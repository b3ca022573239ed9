using Sbp.Engine.Tests.Support;
using Sbp.Tensors;

// Not "…Tests.Ops": a namespace named Ops under Sbp.Engine.Tests would hide the class Sbp.Ops
// from every test file in Sbp.Engine.Tests.*.
namespace Sbp.Engine.Tests.OpTests;

/// <summary>The binary elementwise ops, their float64 definitions and safe input domains.</summary>
static class ElementwiseCases
{
    public sealed record BinaryCase(
        string Name,
        Func<Tensor, Tensor, Tensor> Op,
        Func<double, double, double> Reference,
        Func<int, int, float[]> A,     // (seed, n) -> values for the first operand
        Func<int, int, float[]> B);

    public static readonly BinaryCase[] Binary =
    [
        new("add", Sbp.Ops.Add, (a, b) => a + b, (s, n) => Rand.Uniform(s, n), (s, n) => Rand.Uniform(s, n)),
        new("sub", Sbp.Ops.Sub, (a, b) => a - b, (s, n) => Rand.Uniform(s, n), (s, n) => Rand.Uniform(s, n)),
        new("mul", Sbp.Ops.Mul, (a, b) => a * b, (s, n) => Rand.Uniform(s, n), (s, n) => Rand.Uniform(s, n)),
        // Divisor away from 0 (either sign); base of pow positive, exponent of either sign.
        new("div", Sbp.Ops.Div, (a, b) => a / b, (s, n) => Rand.Uniform(s, n), (s, n) => Rand.AwayFromZero(s, n, 0.5f, 1.5f)),
        new("pow", Sbp.Ops.Pow, Math.Pow, (s, n) => Rand.Positive(s, n, 0.5f, 2f), (s, n) => Rand.Uniform(s, n, -1.5f, 1.5f)),
    ];

    public static BinaryCase Get(string name) => Binary.Single(c => c.Name == name);

    /// <summary>Operand shapes: equal, broadcast on one side or both, scalar-shaped [] either side.</summary>
    public static readonly (int[] A, int[] B)[] ShapePairs =
    [
        ([3, 5], [3, 5]),
        ([3, 1, 5], [4, 1]),   // both broadcast, different ranks
        ([3, 1], [1, 4]),      // both broadcast, same rank
        ([5], [3, 5]),         // left promoted
        ([2, 3, 5], [3, 1]),   // right broadcast along the last axis
        ([], [3, 5]),          // scalar-shaped left
        ([3, 5], []),          // scalar-shaped right
        ([1], [7]),
    ];

    public static IEnumerable<TestCaseData> OpsTimesShapes()
    {
        foreach (var c in Binary)
            foreach (var (a, b) in ShapePairs)
                yield return new TestCaseData(c.Name, a, b).SetArgDisplayNames(c.Name, Ref.Format(a), Ref.Format(b));
    }
}

using Sbp.Engine.Tests.Support;

namespace Sbp.Engine.Tests.OpTests;

/// <summary>Reduction axes on a [3, 5, 7] input: single, several, negative, all (empty list); keepDim both ways.</summary>
static class ReductionCases
{
    static readonly int[][] Dims = [[0], [1], [2], [-1], [0, 2], [-1, 0], [1, 2], [], [0, 1, 2]];

    public static IEnumerable<TestCaseData> DimsAndKeepDim()
    {
        foreach (var op in new[] { "sum", "mean", "max" })
            foreach (var dims in Dims)
                foreach (var keep in new[] { false, true })
                    yield return new TestCaseData(op, dims, keep).SetArgDisplayNames(op, Ref.Format(dims), keep ? "keepDim" : "dropDim");
    }
}

using Sbp.Engine.Tests.Support;

namespace Sbp.Engine.Tests.OpTests;

/// <summary>Operand shapes for matmul: plain, rows-GEMM, batched, batch broadcast both ways, 1-D operands.</summary>
static class MatmulCases
{
    public static readonly (int[] A, int[] B)[] Shapes =
    [
        ([3, 5], [5, 7]),             // 2-D @ 2-D
        ([2, 3, 5], [5, 4]),          // batched @ 2-D: one GEMM over all rows
        ([2, 3, 5], [2, 5, 4]),       // equal batches
        ([2, 1, 3, 5], [3, 5, 4]),    // batch broadcast both ways: [2, 1] x [3] -> [2, 3]
        ([3, 3, 5], [2, 1, 5, 4]),    // and the other way round
        ([3, 5], [2, 5, 4]),          // 2-D left reused for every batch entry (stride 0)
        ([2, 3, 5], [1, 5, 4]),       // right operand's batch of one reused (stride 0) and summed in backward
        ([1, 3, 5], [2, 5, 4]),       // left operand's batch of one
        ([5], [5, 7]),                // 1-D @ 2-D
        ([3, 5], [5]),                // 2-D @ 1-D
        ([5], [5]),                   // 1-D @ 1-D: a scalar-shaped result
        ([5], [2, 5, 4]),             // 1-D @ batched
        ([2, 3, 5], [5]),             // batched @ 1-D
    ];

    public static IEnumerable<TestCaseData> ShapeCases() =>
        Shapes.Select(s => new TestCaseData(s.A, s.B).SetArgDisplayNames(Ref.Format(s.A), Ref.Format(s.B)));
}

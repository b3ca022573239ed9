using Sbp.Backends;
using Sbp.Backends.Cpu;
using Sbp.Engine.Tests.Support;
using Sbp.Tensors;

namespace Sbp.Engine.Tests.Backends.Cpu;

/// <summary>
/// CpuBackend's broadcasting binary ops and copies walk rows in blocks along the second-to-last
/// axis (CpuLoops.ForRows); parallel chunks start and end inside blocks. Sizes large enough to run
/// in parallel, against index arithmetic, exactly.
/// </summary>
public sealed class BroadcastRowsTests : DeviceTest
{
    static IEnumerable<TestCaseData> Cases()
    {
        yield return new TestCaseData(new[] { 4099, 24 }, new[] { 24 }).SetName("bias row over [4099, 24]");
        yield return new TestCaseData(new[] { 7, 11, 13, 37 }, new[] { 1, 11, 1, 37 }).SetName("[7, 11, 13, 37] with [1, 11, 1, 37]");
        yield return new TestCaseData(new[] { 9, 1, 3000, 5 }, new[] { 9, 1, 1, 5 }).SetName("[9, 1, 3000, 5] with [9, 1, 1, 5]");
        yield return new TestCaseData(new[] { 3, 5000, 3 }, new[] { 3, 5000, 1 }).SetName("[3, 5000, 3] with a column");
    }

    [TestCaseSource(nameof(Cases))]
    public void BinaryAndCopy_MatchIndexArithmetic(int[] aShape, int[] bShape)
    {
        var shape = new Shape(aShape);
        var bs = new Shape(bShape);
        var ad = Rand.Uniform(1, (int)shape.Numel);
        var bd = Rand.Uniform(2, (int)bs.Numel, 0.5f, 2f);
        using var a = T(ad, aShape);
        using var b = T(bd, bShape);
        var bStrides = bs.BroadcastStrides(shape);
        long BIndex(long i)
        {
            long off = 0;
            for (int d = shape.Rank - 1; d >= 0; d--)
            {
                off += i % shape[d] * bStrides[d];
                i /= shape[d];
            }
            return off;
        }
        foreach (var op in new[] { BinaryOp.Add, BinaryOp.Sub, BinaryOp.Mul, BinaryOp.Div })
        {
            using var c = Tensor.Empty(shape, Device);
            using var swapped = Tensor.Empty(shape, Device);
            CpuBackend.Instance.Binary(op, a, b, c);
            CpuBackend.Instance.Binary(op, b, a, swapped);
            var got = c.ToArray();
            var gotSwapped = swapped.ToArray();
            for (long i = 0; i < shape.Numel; i++)
            {
                float x = ad[i], y = bd[BIndex(i)];
                float want = op switch { BinaryOp.Add => x + y, BinaryOp.Sub => x - y, BinaryOp.Mul => x * y, _ => x / y };
                float wantSwapped = op switch { BinaryOp.Add => y + x, BinaryOp.Sub => y - x, BinaryOp.Mul => y * x, _ => y / x };
                if (got[i] != want) Assert.Fail($"{op} at {i}: {got[i]}, want {want}");
                if (gotSwapped[i] != wantSwapped) Assert.Fail($"{op} (broadcast first) at {i}: {gotSwapped[i]}, want {wantSwapped}");
            }
        }
        using var copy = Tensor.Empty(shape, Device);
        CpuBackend.Instance.Copy(b, copy);
        var copied = copy.ToArray();
        for (long i = 0; i < shape.Numel; i++)
            if (copied[i] != bd[BIndex(i)]) Assert.Fail($"broadcast copy at {i}: {copied[i]}, want {bd[BIndex(i)]}");
    }
}

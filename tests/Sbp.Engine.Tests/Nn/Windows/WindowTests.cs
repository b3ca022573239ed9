using Sbp.Engine.Tests.Support;
using Sbp.Tensors;

namespace Sbp.Engine.Tests.Nn.Windows;

/// <summary>Ops.Roll, Ops.Pad, Ops.WindowPartition3d / WindowReverse3d: index arithmetic, gradients, round trips.</summary>
public class WindowTests : DeviceTest
{
    static int Mod(int a, int n) => ((a % n) + n) % n;

    [Test]
    public void RollMatchesIndexArithmetic()
    {
        int[] shape = [2, 5, 7];
        var x = Rand.Uniform(1, 70);
        var y = Ops.Roll(T(x, shape), [2, -3], [1, 2]).ToArray();
        var expected = new float[70];
        for (int a = 0; a < 2; a++)
            for (int i = 0; i < 5; i++)
                for (int j = 0; j < 7; j++)
                    expected[(a * 5 + Mod(i + 2, 5)) * 7 + Mod(j - 3, 7)] = x[(a * 5 + i) * 7 + j];
        Assert.That(y, Is.EqualTo(expected));
    }

    [Test]
    public void RollTakesShiftsModuloTheSizeAndAddsRepeatedDims()
    {
        var x = T(Rand.Uniform(2, 70), 2, 5, 7);
        var reference = Ops.Roll(x, [2, -3], [1, 2]).ToArray();
        Assert.That(Ops.Roll(x, [12, 4 - 14], [-2, -1]).ToArray(), Is.EqualTo(reference));   // 12 = 2 mod 5, -10 = 4 = -3 mod 7
        Assert.That(Ops.Roll(x, [1, -3, 1], [1, 2, 1]).ToArray(), Is.EqualTo(reference));    // dim 1 twice: 1 + 1
        Assert.That(Ops.Roll(x, [5, 0], [1, 0]).ToArray(), Is.EqualTo(x.ToArray()));          // a full turn is a copy
    }

    [Test]
    public void RollGradient() =>
        GradCheck.Check("roll", x => Ops.Roll(x[0], [2, -3, 1], [1, 2, 0]), GradInput.Uniform(3, 2, 5, 7));

    [Test]
    public void RollErrors()
    {
        var x = T(new float[6], 2, 3);
        Assert.That(() => Ops.Roll(x, [1], [0, 1]), Throws.ArgumentException.With.Message.Contains("one shift per dimension"));
        Assert.That(() => Ops.Roll(x, [1], [2]), Throws.InstanceOf<ArgumentOutOfRangeException>());
    }

    /// <summary>Reference pad: y[i] = x[i - before] inside, value outside.</summary>
    static float[] NaivePad(float[] x, int[] shape, int[] before, int[] outShape, float value)
    {
        var y = new float[Ref.Numel(outShape)];
        for (int k = 0; k < y.Length; k++)
        {
            var idx = Ref.Unravel(k, outShape);
            bool inside = true;
            for (int d = 0; d < shape.Length; d++)
            {
                idx[d] -= before[d];
                inside &= idx[d] >= 0 && idx[d] < shape[d];
            }
            y[k] = inside ? x[Ref.Ravel(idx, shape)] : value;
        }
        return y;
    }

    [Test]
    public void PadMatchesIndexArithmetic()
    {
        int[] shape = [2, 3, 5];
        var x = Rand.Uniform(4, 30);
        // F.pad order: last dim (1, 2), then dim 1 (0, 3).
        var y = Ops.Pad(T(x, shape), [1, 2, 0, 3], -7f);
        Assert.That(y.Shape, Is.EqualTo(new Shape(2, 6, 8)));
        Assert.That(y.ToArray(), Is.EqualTo(NaivePad(x, shape, [0, 0, 1], [2, 6, 8], -7f)));
        var all = Ops.Pad(T(x, shape), [0, 1, 2, 0, 1, 1]);
        Assert.That(all.ToArray(), Is.EqualTo(NaivePad(x, shape, [1, 2, 0], [4, 5, 6], 0f)));
        Assert.That(Ops.Pad(T(x, shape), [0, 0]).ToArray(), Is.EqualTo(x));
    }

    [Test]
    public void PadGradient() =>
        GradCheck.Check("pad", x => Ops.Pad(x[0], [1, 2, 0, 3, 2, 0], 0.5f), GradInput.Uniform(5, 2, 3, 5));

    [Test]
    public void PadErrors()
    {
        var x = T(new float[6], 2, 3);
        Assert.That(() => Ops.Pad(x, [1, 1, 1]), Throws.ArgumentException.With.Message.Contains("pairs"));
        Assert.That(() => Ops.Pad(x, [1, 1, 1, 1, 1, 1]), Throws.ArgumentException.With.Message.Contains("pairs"));
        Assert.That(() => Ops.Pad(x, [-1, 1]), Throws.ArgumentException.With.Message.Contains("non-negative"));
    }

    [Test]
    public void WindowPartitionMatchesVideoSwinIndexing()
    {
        // B=2, T=4, H=3, W=6, C=5 with window (2, 3, 2): nW = 2 * 1 * 3 = 6 per sample.
        int b = 2, t = 4, h = 3, w = 6, c = 5, wt = 2, wh = 3, ww = 2;
        var x = Rand.Uniform(6, b * t * h * w * c);
        var y = Ops.WindowPartition3d(T(x, b, t, h, w, c), (wt, wh, ww));
        int nT = t / wt, nH = h / wh, nW = w / ww;
        Assert.That(y.Shape, Is.EqualTo(new Shape(b * nT * nH * nW, wt * wh * ww, c)));
        var got = y.ToArray();
        for (int bi = 0; bi < b; bi++)
            for (int ti = 0; ti < t; ti++)
                for (int hi = 0; hi < h; hi++)
                    for (int wi = 0; wi < w; wi++)
                        for (int ci = 0; ci < c; ci++)
                        {
                            int window = ((bi * nT + ti / wt) * nH + hi / wh) * nW + wi / ww;
                            int token = ((ti % wt) * wh + hi % wh) * ww + wi % ww;
                            Assert.That(got[(window * wt * wh * ww + token) * c + ci],
                                Is.EqualTo(x[(((bi * t + ti) * h + hi) * w + wi) * c + ci]));
                        }
    }

    [Test]
    public void WindowReverseUndoesPartitionExactly()
    {
        var x = Rand.Uniform(7, 2 * 4 * 6 * 9 * 3);
        var xs = T(x, 2, 4, 6, 9, 3);
        var windows = Ops.WindowPartition3d(xs, (2, 3, 3));
        Assert.That(Ops.WindowReverse3d(windows, (2, 3, 3), 2, 4, 6, 9).ToArray(), Is.EqualTo(x));
        Assert.That(Ops.WindowPartition3d(Ops.WindowReverse3d(windows, (2, 3, 3), 2, 4, 6, 9), (2, 3, 3)).ToArray(),
            Is.EqualTo(windows.ToArray()));
    }

    [Test]
    public void ShiftedWindowRoundTrip()
    {
        // Swin's shifted window path: pad, roll by -shift, partition ... reverse, roll back, crop.
        var x = Rand.Uniform(8, 1 * 3 * 5 * 5 * 2);
        var xs = T(x, 1, 3, 5, 5, 2);
        var padded = Ops.Pad(xs, [0, 0, 0, 1, 0, 1, 0, 1]);                 // -> [1, 4, 6, 6, 2]
        var shifted = Ops.Roll(padded, [-1, -1, -1], [1, 2, 3]);
        var windows = Ops.WindowPartition3d(shifted, (2, 3, 3));
        var back = Ops.Roll(Ops.WindowReverse3d(windows, (2, 3, 3), 1, 4, 6, 6), [1, 1, 1], [1, 2, 3]);
        Assert.That(back.ToArray(), Is.EqualTo(padded.ToArray()));
        var cropped = Ops.Slice(Ops.Slice(Ops.Slice(back, 1, 0, 3), 2, 0, 5), 3, 0, 5);
        Assert.That(cropped.ToArray(), Is.EqualTo(x));
    }

    [Test]
    public void WindowPartitionGradient() =>
        GradCheck.Check("window_partition3d", x => Ops.WindowPartition3d(x[0], (2, 1, 3)), GradInput.Uniform(9, 2, 2, 3, 3, 2));

    [Test]
    public void WindowReverseGradient() =>
        GradCheck.Check("window_reverse3d", x => Ops.WindowReverse3d(x[0], (2, 1, 3), 2, 2, 3, 3), GradInput.Uniform(10, 6, 6, 2));

    [Test]
    public void WindowErrorsExplainThePadding()
    {
        var x = T(new float[1 * 3 * 5 * 5 * 2], 1, 3, 5, 5, 2);
        Assert.That(() => Ops.WindowPartition3d(x, (2, 3, 3)),
            Throws.TypeOf<ShapeMismatchException>().With.Message.Contains("multiples of the window").And.Message.Contains("Ops.Pad(x, [0, 0, 0, 1, 0, 1, 0, 1])"));
        Assert.That(() => Ops.WindowPartition3d(T(new float[6], 2, 3), (1, 1, 1)),
            Throws.TypeOf<ShapeMismatchException>().With.Message.Contains("[B, T, H, W, C]"));
        Assert.That(() => Ops.WindowReverse3d(T(new float[5 * 18 * 2], 5, 18, 2), (2, 3, 3), 1, 4, 6, 6),
            Throws.TypeOf<ShapeMismatchException>().With.Message.Contains("[8, 18, C]"));
        Assert.That(() => Ops.WindowPartition3d(x, (0, 1, 1)), Throws.InstanceOf<ArgumentOutOfRangeException>());
    }
}

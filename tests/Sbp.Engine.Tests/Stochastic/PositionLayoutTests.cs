using Sbp.Stochastic;
using Sbp.Tensors;

namespace Sbp.Engine.Tests.Stochastic;

/// <summary>
/// PositionLayout against brute force on the host: every layout a test makes is checked element by
/// element (which flat index of the tensor is kept) rather than against the layout code's own
/// arithmetic. Written against the mutants that survived the region tests (docs/TESTING.md section 6).
/// </summary>
public class PositionLayoutTests
{
    static readonly int[][] Patterns =
    [
        [1, 3, 5, 7], [0, 4], [2], [0, 1, 2, 3, 4, 5, 6, 7], [0, 1, 5], [3, 7], [], [0, 2, 3, 5, 6],
    ];

    static PositionLayout Layout(int[] kept, int size = 8, int axis = 0) => new(axis, size, kept);

    /// <summary>Whether flat index f of a tensor of <paramref name="shape"/> is kept under <paramref name="layout"/>.</summary>
    static bool KeptAt(PositionLayout layout, Shape shape, long f)
    {
        long inner = 1;
        for (int i = layout.Axis + 1; i < shape.Rank; i++) inner *= shape[i];
        return layout.Contains((int)(f / inner % layout.Size));
    }

    [Test]
    public void KeptIndicesMustBeSortedDistinctAndInRange()
    {
        Assert.That(Layout([0, 7]).Kept.ToArray(), Is.EqualTo(new[] { 0, 7 }));
        foreach (var bad in new[] { new[] { 8 }, new[] { -1 }, new[] { 3, 2 }, new[] { 2, 2 } })
        {
            var e = Assert.Throws<ArgumentException>(() => Layout(bad));
            Assert.That(e!.Message, Does.Contain("PositionLayout: kept indices must be sorted, distinct and in 0..7"), string.Join(",", bad));
        }
        Assert.That(Layout([0, 1, 2, 3, 4, 5, 6, 7]).KeepsAll, Is.True);
        Assert.That(Layout([0, 1, 2]).KeepsAll, Is.False);
    }

    [Test]
    public void CompactShapeAndAxisMoves()
    {
        var l = Layout([1, 5], axis: 1);
        Assert.That(l.CompactShape(new Shape(3, 8)), Is.EqualTo(new Shape(3, 2)));
        foreach (var shape in new[] { new Shape(8), new Shape(3, 7) })
        {
            var e = Assert.Throws<InvalidOperationException>(() => l.CompactShape(shape));
            Assert.That(e!.Message, Does.Contain($"PositionLayout: axis 1 of size 8 does not fit {shape}"));
        }
        Assert.That(l.OnAxis(1), Is.SameAs(l));
        Assert.That(l.OnAxis(0), Is.EqualTo(Layout([1, 5], axis: 0)));
    }

    [Test]
    public void PeriodIsTheSmallestRepeat()
    {
        foreach (var kept in Patterns)
        {
            var l = Layout(kept);
            int expected = Enumerable.Range(1, 8).First(p => Enumerable.Range(0, 8 - p).All(i => l.Contains(i) == l.Contains(i + p)) || p == 8);
            Assert.That(l.Period(), Is.EqualTo(expected), string.Join(",", kept));
        }
        Assert.That(new PositionLayout(0, 0, []).Period(), Is.EqualTo(1), "an empty axis");
        Assert.That(new PositionLayout(0, 1, [0]).Period(), Is.EqualTo(1));
    }

    [Test]
    public void PaddingKeepsTheMiddleAndContinuesThePatternWithItsPeriod()
    {
        foreach (var kept in Patterns)
            foreach (var (before, after) in new[] { (0, 0), (3, 0), (0, 5), (2, 9), (11, 4) })
            {
                var l = Layout(kept);
                var padded = l.Padded(before, after);
                int p = l.Period(), n = before + 8 + after;
                Assert.That(padded.Size, Is.EqualTo(n));
                Assert.That(padded.Sliced(before, 8), Is.EqualTo(l), $"{string.Join(",", kept)} padded {before}/{after}: the middle");
                for (int i = 0; i + p < n; i++)
                    Assert.That(padded.Contains(i), Is.EqualTo(padded.Contains(i + p)), $"{string.Join(",", kept)} padded {before}/{after}: period {p} at {i}");
            }
        var e = Assert.Throws<ArgumentOutOfRangeException>(() => Layout([1]).Padded(0, -1));
        Assert.That(e!.Message, Does.Contain("PositionLayout.Padded: pads must be non-negative, got 0 and -1"));
        Assert.Throws<ArgumentOutOfRangeException>(() => Layout([1]).Padded(-1, 0));
    }

    [Test]
    public void SlicesRenumberTheKeptPositionsInside()
    {
        var l = Layout([1, 3, 4, 7]);
        foreach (var (start, length) in new[] { (0, 8), (0, 0), (3, 5), (1, 3), (4, 1), (8, 0) })
        {
            var expected = Enumerable.Range(start, length).Where(l.Contains).Select(k => k - start);
            Assert.That(l.Sliced(start, length), Is.EqualTo(new PositionLayout(0, length, expected)), $"[{start}, {start + length})");
        }
        foreach (var (start, length) in new[] { (-1, 2), (2, -1), (4, 5), (9, 0) })
        {
            var e = Assert.Throws<ArgumentOutOfRangeException>(() => l.Sliced(start, length));
            Assert.That(e!.Message, Does.Contain($"PositionLayout.Sliced: [{start}, {start + length}) is outside 0..8"));
        }
    }

    [Test]
    public void KeptBeforeCountsTheKeptPositionsBelow()
    {
        var l = Layout([1, 3, 4, 7]);
        for (int position = 0; position <= 8; position++)
            Assert.That(l.KeptBefore(position), Is.EqualTo(l.Kept.ToArray().Count(k => k < position)), $"position {position}");
    }

    [Test]
    public void RollsMoveTheKeptSetAndRotateTheCompactForm()
    {
        foreach (var kept in Patterns)
            foreach (int shift in new[] { 0, 1, 3, 8, 11, -1, -5, -17 })
            {
                var l = Layout(kept);
                int s = ((shift % 8) + 8) % 8;
                var rolled = l.Rolled(shift);
                Assert.That(rolled.Kept.ToArray(), Is.EqualTo(kept.Select(k => (k + s) % 8).Order().ToArray()), $"{string.Join(",", kept)} rolled {shift}");
                // compact(roll(x)) == roll(compact(x), CompactRoll) with x[i] = i.
                var compactOfRolled = rolled.Kept.ToArray().Select(j => (j - s + 8) % 8).ToArray();
                int r = l.CompactRoll(shift), c = kept.Length;
                var rolledCompact = Enumerable.Range(0, c).Select(i => kept[((i - r) % c + c) % c]).ToArray();
                Assert.That(compactOfRolled, Is.EqualTo(rolledCompact), $"{string.Join(",", kept)} compact roll {shift}");
            }
    }

    static IEnumerable<TestCaseData> Reshapes()
    {
        // (from, to, axis, kept): window partitions, merges and splits of the kept axis, a flatten.
        yield return new TestCaseData(new[] { 8, 4 }, new[] { 2, 4, 4 }, 0, new[] { 1, 3, 5, 7 });
        yield return new TestCaseData(new[] { 8, 4 }, new[] { 32 }, 0, new[] { 0, 4 });
        yield return new TestCaseData(new[] { 2, 8 }, new[] { 2, 2, 4 }, 1, new[] { 0, 2, 4, 6 });
        yield return new TestCaseData(new[] { 2, 8 }, new[] { 2, 2, 4 }, 1, new[] { 0, 1, 2, 3 });
        yield return new TestCaseData(new[] { 8, 6 }, new[] { 4, 2, 3, 2 }, 0, new[] { 0, 2, 4, 6 });
        yield return new TestCaseData(new[] { 4, 6 }, new[] { 2, 12 }, 1, new[] { 1, 4 });
        yield return new TestCaseData(new[] { 6, 2 }, new[] { 3, 4 }, 0, new[] { 0, 1, 4, 5 });
        yield return new TestCaseData(new[] { 6, 2 }, new[] { 3, 4 }, 0, new[] { 0, 3 });
        yield return new TestCaseData(new[] { 4, 3 }, new[] { 2, 6 }, 1, new[] { 1 });
        yield return new TestCaseData(new[] { 1, 8 }, new[] { 8, 1 }, 1, new[] { 2, 5 });
    }

    /// <summary>
    /// A reshape's layout keeps exactly the flat indices the old one kept; when it is refused, no
    /// axis of the new shape carries the kept set (checked by brute force over every axis).
    /// </summary>
    [TestCaseSource(nameof(Reshapes))]
    public void ReshapesKeepTheSameElements(int[] fromDims, int[] toDims, int axis, int[] kept) =>
        Assert.That(ReshapeError(new Shape(fromDims), new Shape(toDims), new PositionLayout(axis, fromDims[axis], kept)), Is.Null);

    [Test]
    public void EveryReshapeOfSmallShapesAgreesWithBruteForce()
    {
        // Every 2-D shape of up to 24 elements, the region on either axis with strided, blocked and
        // irregular kept sets, reshaped to every 2-D and 3-D shape of the same size.
        int cases = 0;
        for (int a = 1; a <= 8; a++)
            for (int b = 1; b <= 8 && a * b <= 24; b++)
                foreach (var to in Factorizations(a * b))
                    for (int axis = 0; axis < 2; axis++)
                    {
                        int size = axis == 0 ? a : b;
                        foreach (var kept in KeptSets(size))
                        {
                            string? error = ReshapeError(new Shape(a, b), new Shape(to), new PositionLayout(axis, size, kept));
                            Assert.That(error, Is.Null, $"[{a}, {b}] axis {axis} kept [{string.Join(", ", kept)}] to [{string.Join(", ", to)}]");
                            cases++;
                        }
                    }
        Assert.That(cases, Is.GreaterThan(5000));
    }

    static IEnumerable<int[]> Factorizations(int n)
    {
        for (int x = 1; x <= n; x++)
        {
            if (n % x != 0) continue;
            yield return [x, n / x];
            for (int y = 1; y <= n / x; y++)
                if (n / x % y == 0) yield return [x, y, n / x / y];
        }
    }

    static IEnumerable<int[]> KeptSets(int size)
    {
        for (int stride = 2; stride <= 4; stride++)
            for (int offset = 0; offset < Math.Min(stride, size); offset++)
                yield return Enumerable.Range(0, size).Where(i => i % stride == offset).ToArray();
        if (size >= 2) yield return Enumerable.Range(0, size / 2).ToArray();
        if (size >= 3) yield return [0, size - 1];
    }

    /// <summary>Null when <see cref="PositionLayout.Reshape"/> agrees with brute force over the flat indices, else what differs.</summary>
    static string? ReshapeError(Shape from, Shape to, PositionLayout layout)
    {
        var result = layout.Reshape(from, to);
        var oldKept = Enumerable.Range(0, (int)from.Numel).Select(f => KeptAt(layout, from, f)).ToArray();
        bool Carries(int b)
        {
            long inner = 1;
            for (int i = b + 1; i < to.Rank; i++) inner *= to[i];
            var byCoord = new bool?[to[b]];
            for (int f = 0; f < oldKept.Length; f++)
            {
                int c = (int)(f / inner % to[b]);
                if (byCoord[c] is { } k && k != oldKept[f]) return false;
                byCoord[c] = oldKept[f];
            }
            return true;
        }
        int? first = Enumerable.Range(0, to.Rank).Where(b => to[b] > 1 && Carries(b)).Cast<int?>().FirstOrDefault();
        if (result?.Axis != first) return $"axis {result?.Axis.ToString() ?? "none"}, expected the first axis that carries the kept set, {first?.ToString() ?? "none"}";
        if (result is null) return null;
        for (int f = 0; f < oldKept.Length; f++)
            if (KeptAt(result, to, f) != oldKept[f]) return $"flat index {f} kept {!oldKept[f]}";
        return null;
    }

    [Test]
    public void EqualityHashingAndText()
    {
        var a = Layout([1, 5]);
        Assert.That(a, Is.EqualTo(Layout([1, 5])));
        Assert.That(a.GetHashCode(), Is.EqualTo(Layout([1, 5]).GetHashCode()));
        Assert.That(a.Equals((object)Layout([1, 5])), Is.True);
        Assert.That(a, Is.Not.EqualTo(Layout([1, 5], axis: 1)));
        Assert.That(a, Is.Not.EqualTo(Layout([1, 5], size: 9)));
        Assert.That(a, Is.Not.EqualTo(Layout([1, 6])));
        Assert.That(Layout([]).GetHashCode(), Is.EqualTo(new PositionLayout(0, 8, []).GetHashCode()), "an empty layout hashes too");
        Assert.That(a.ToString(), Is.EqualTo("axis 0: 2 of 8 kept [1, 5]"));
        Assert.That(new PositionLayout(2, 9, Enumerable.Range(0, 8)).ToString(), Is.EqualTo("axis 2: 8 of 9 kept [0, 1, 2, 3, 4, 5, 6, 7]"));
        Assert.That(new PositionLayout(2, 9, Enumerable.Range(0, 9)).ToString(), Is.EqualTo("axis 2: 9 of 9 kept [0, 1, 2, 3, 4, 5, 6, 7, ...]"));
        Assert.That(a.Equals(null), Is.False);   // last: the compiler reads it as a null test of a
    }
}

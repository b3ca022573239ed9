using Sbp.Models.Data;

namespace Sbp.Models.Tests.Data;

public class SyntheticActionsTests
{
    [Test]
    public void SampleIsAPureFunctionOfSeedSplitAndIndex()
    {
        var a = DataTestSupport.SmallActions();
        var b = DataTestSupport.SmallActions();
        Assert.Multiple(() =>
        {
            for (int i = 0; i < 8; i++)
            {
                Assert.That(b.Get(i, null).Clip.Data, Is.EqualTo(a.Get(i, null).Clip.Data), $"sample {i} differs between instances");
                Assert.That(a.Get(i, new SampleRng(99)).Clip.Data, Is.EqualTo(a.Get(i, null).Clip.Data), "the rng argument must not change a synthetic clip");
            }
            var val = DataTestSupport.SmallActions(split: DataSplit.Validation);
            var otherSeed = DataTestSupport.SmallActions(seed: 4);
            Assert.That(val.Get(0, null).Clip.Data, Is.Not.EqualTo(a.Get(0, null).Clip.Data), "train and val share a sample");
            Assert.That(otherSeed.Get(0, null).Clip.Data, Is.Not.EqualTo(a.Get(0, null).Clip.Data), "the seed does not matter");
            Assert.That(a.Get(8, null).Clip.Data, Is.Not.EqualTo(a.Get(0, null).Clip.Data), "two samples of one class are identical");
        });
    }

    [Test]
    public void RenderedClipsAreCachedUpToTheBudgetWithTheSameContent()
    {
        var options = new SyntheticActionsOptions { Count = 6, Frames = 8, Height = 16, Width = 16, Seed = 3 };
        int clipBytes = 8 * 16 * 16 * 3;
        var uncached = new SyntheticActions(options with { CacheBytes = 0 }, DataSplit.Train);
        var cached = new SyntheticActions(options, DataSplit.Train);
        var twoClips = new SyntheticActions(options with { CacheBytes = 2 * clipBytes }, DataSplit.Train);
        Assert.Multiple(() =>
        {
            for (int pass = 0; pass < 2; pass++)
                for (int i = 0; i < options.Count; i++)
                {
                    var expected = uncached.Get(i, null);
                    Assert.That(cached.Get(i, null).Clip.Data, Is.EqualTo(expected.Clip.Data), $"sample {i}, pass {pass}");
                    Assert.That(twoClips.Get(i, null).Clip.Data, Is.EqualTo(expected.Clip.Data), $"sample {i}, pass {pass}, budget of two clips");
                    Assert.That(cached.Get(i, null).Label, Is.EqualTo(expected.Label));
                }
            var first = cached.Get(3, null);
            Assert.That(cached.Get(3, null), Is.SameAs(first), "a cached sample is served, not rendered again");
            var once = uncached.Get(3, null);
            Assert.That(uncached.Get(3, null), Is.Not.SameAs(once), "CacheBytes 0 renders every time");
            Assert.That((cached.Cache.Count, cached.Cache.Bytes), Is.EqualTo((6, 6L * clipBytes)));
            Assert.That((twoClips.Cache.Count, twoClips.Cache.Bytes), Is.EqualTo((2, 2L * clipBytes)), "the budget holds two clips");
            Assert.That((uncached.Cache.Count, uncached.Cache.Bytes), Is.EqualTo((0, 0L)));
        });
        Assert.Throws<DataOptionException>(() => new SyntheticActions(options with { CacheBytes = -1 }, DataSplit.Train));
        // Preload renders every clip when all fit, and nothing when they do not
        var all = new SyntheticActions(options, DataSplit.Train);
        ((IVideoDataset)all).Preload();
        Assert.That(all.Cache.Count, Is.EqualTo(options.Count));
        var some = new SyntheticActions(options with { CacheBytes = 5 * clipBytes }, DataSplit.Train);
        ((IVideoDataset)some).Preload();
        Assert.That(some.Cache.Count, Is.Zero);
    }

    [Test]
    public void LabelsAreBalancedAndShapesFollowTheOptions()
    {
        var d = DataTestSupport.SmallActions(count: 30, classes: 5, frames: 6, size: 12);
        var labels = Enumerable.Range(0, d.Count).Select(i => d.Get(i, null).Label).ToArray();
        var s = d.Get(0, null).Clip;
        Assert.Multiple(() =>
        {
            Assert.That(labels.GroupBy(l => l).Select(g => g.Count()), Is.All.EqualTo(6));
            Assert.That(labels.Distinct().Order(), Is.EqualTo(new[] { 0, 1, 2, 3, 4 }));
            Assert.That((s.Frames, s.Height, s.Width), Is.EqualTo((6, 12, 12)));
            Assert.That(d.ClassNames, Is.EqualTo(SyntheticActions.AllClassNames.Take(5)));
        });
    }

    [Test]
    public void EachPairedClassIsTheTimeReversalOfItsPartnerForTheSameDraw()
    {
        // The frame *set* of class c equals that of its partner: no single frame (nor any orderless
        // pooling of frames) can separate them; only the order can.
        var d = new SyntheticActions(new SyntheticActionsOptions { Classes = 11, Frames = 8, Height = 16, Width = 16, Distractors = 2 }, DataSplit.Train);
        Assert.Multiple(() =>
        {
            for (int c = 0; c < 10; c++)
            {
                int p = SyntheticActions.ReversePartner(c);
                Assert.That(p, Is.Not.EqualTo(c));
                for (int draw = 0; draw < 3; draw++)
                {
                    var a = d.Render(c, SampleRng.For(5, "pair", draw));
                    var b = d.Render(p, SampleRng.For(5, "pair", draw));
                    Assert.That(b.Data, Is.EqualTo(a.Reversed().Data), $"class {c} vs {p}, draw {draw}");
                    Assert.That(b.Data, Is.Not.EqualTo(a.Data), $"class {c} is time-symmetric: its partner equals it");
                }
            }
            Assert.That(SyntheticActions.ReversePartner(10), Is.EqualTo(10), "bounce is its own reverse");
        });
    }

    [Test]
    public void OneFrameAtARandomTimeDoesNotTellTheClassButMotionDoes()
    {
        // Nearest-centroid classifiers on the same clips: single-frame appearance statistics stay near
        // chance; a two-frame motion feature (object displacement and growth) separates the classes.
        // Classes: right, left, down, up, approach, recede (translation and scale are easy to measure).
        int[] classes = [0, 1, 2, 3, 6, 7];
        const int perClass = 48, T = 8, S = 24;
        var d = new SyntheticActions(new SyntheticActionsOptions { Classes = 8, Frames = T, Height = S, Width = S, Noise = 0.02f }, DataSplit.Train);
        var frameFeatures = new List<(int Label, double[] X)>();
        var motionFeatures = new List<(int Label, double[] X)>();
        var pick = new SampleRng(11);
        for (int k = 0; k < perClass; k++)
            foreach (int c in classes)
            {
                var clip = d.Render(c, SampleRng.For(77, "single-frame", k));
                frameFeatures.Add((c, FrameStatistics(clip, pick.Int(T))));
                motionFeatures.Add((c, Motion(clip)));
            }
        double frameAccuracy = NearestCentroidAccuracy(frameFeatures);
        double motionAccuracy = NearestCentroidAccuracy(motionFeatures);
        double chance = 1.0 / classes.Length;
        TestContext.Out.WriteLine($"nearest centroid: one frame {frameAccuracy:P1}, motion {motionAccuracy:P1}, chance {chance:P1}");
        Assert.Multiple(() =>
        {
            Assert.That(frameAccuracy, Is.LessThan(chance + 0.12), $"single-frame statistics classify at {frameAccuracy:P0} (chance {chance:P0})");
            Assert.That(motionAccuracy, Is.GreaterThan(0.8), $"the motion feature classifies at only {motionAccuracy:P0}: the classes are not separable by motion");
        });
    }

    /// <summary>Per-channel mean and std plus horizontal and vertical gradient energy of one frame.</summary>
    static double[] FrameStatistics(VideoClip clip, int t)
    {
        var f = clip.Frame(t);
        int H = clip.Height, W = clip.Width;
        var x = new double[8];
        for (int c = 0; c < 3; c++)
        {
            double s = 0, s2 = 0;
            for (int p = 0; p < H * W; p++) { double v = f[p * 3 + c]; s += v; s2 += v * v; }
            x[c] = s / (H * W);
            x[3 + c] = Math.Sqrt(Math.Max(0, s2 / (H * W) - x[c] * x[c]));
        }
        for (int y = 0; y < H; y++)
            for (int i = 0; i < W; i++)
                for (int c = 0; c < 3; c++)
                {
                    x[6] += Math.Abs(f[(y * W + i) * 3 + c] - f[(y * W + (i + 1) % W) * 3 + c]);
                    x[7] += Math.Abs(f[(y * W + i) * 3 + c] - f[((y + 1) % H * W + i) * 3 + c]);
                }
        x[6] /= H * W; x[7] /= H * W;
        return x;
    }

    /// <summary>
    /// Object displacement (circular mean of the pixels that differ from the clip's temporal median,
    /// summed over consecutive frames) and log growth of that mask from the first frame to the last.
    /// </summary>
    static double[] Motion(VideoClip clip)
    {
        int T = clip.Frames, H = clip.Height, W = clip.Width, n = H * W;
        var median = new byte[n * 3];
        var column = new byte[T];
        for (int i = 0; i < n * 3; i++)
        {
            for (int t = 0; t < T; t++) column[t] = clip.Data[t * n * 3 + i];
            Array.Sort(column);
            median[i] = column[T / 2];
        }
        (double X, double Y, double Area) Blob(int t)
        {
            double cx = 0, sx = 0, cy = 0, sy = 0, area = 0;
            var f = clip.Frame(t);
            for (int y = 0; y < H; y++)
                for (int x = 0; x < W; x++)
                {
                    int o = (y * W + x) * 3;
                    int diff = Math.Abs(f[o] - median[o]) + Math.Abs(f[o + 1] - median[o + 1]) + Math.Abs(f[o + 2] - median[o + 2]);
                    if (diff < 60) continue;
                    area++;
                    cx += Math.Cos(2 * Math.PI * x / W); sx += Math.Sin(2 * Math.PI * x / W);
                    cy += Math.Cos(2 * Math.PI * y / H); sy += Math.Sin(2 * Math.PI * y / H);
                }
            return (Math.Atan2(sx, cx) * W / (2 * Math.PI), Math.Atan2(sy, cy) * H / (2 * Math.PI), area + 1);
        }
        double Wrap(double d, int size) => d - size * Math.Round(d / size);
        double dx = 0, dy = 0;
        var previous = Blob(0);
        for (int t = 1; t < T; t++)
        {
            // consecutive displacements: the whole travel (half the frame) would be ambiguous on the torus
            var next = Blob(t);
            dx += Wrap(next.X - previous.X, W);
            dy += Wrap(next.Y - previous.Y, H);
            previous = next;
        }
        return [dx / W, dy / H, Math.Log(Blob(T - 1).Area / Blob(0).Area)];
    }

    /// <summary>Fits class centroids (standardized features) on the first half of each class's samples, scores the second half.</summary>
    static double NearestCentroidAccuracy(List<(int Label, double[] X)> data)
    {
        int dims = data[0].X.Length;
        var mean = new double[dims];
        var std = new double[dims];
        foreach (var (_, x) in data) for (int j = 0; j < dims; j++) mean[j] += x[j] / data.Count;
        foreach (var (_, x) in data) for (int j = 0; j < dims; j++) std[j] += (x[j] - mean[j]) * (x[j] - mean[j]) / data.Count;
        for (int j = 0; j < dims; j++) std[j] = Math.Sqrt(std[j]) + 1e-9;
        double[] Z(double[] x) => x.Select((v, j) => (v - mean[j]) / std[j]).ToArray();
        var train = data.GroupBy(s => s.Label).SelectMany(g => g.Take(g.Count() / 2)).ToList();
        var test = data.GroupBy(s => s.Label).SelectMany(g => g.Skip(g.Count() / 2)).ToList();
        var centroids = train.GroupBy(s => s.Label).ToDictionary(g => g.Key, g =>
        {
            var c = new double[dims];
            foreach (var (_, x) in g) { var z = Z(x); for (int j = 0; j < dims; j++) c[j] += z[j] / g.Count(); }
            return c;
        });
        int correct = 0;
        foreach (var (label, x) in test)
        {
            var z = Z(x);
            int best = centroids.MinBy(kv => kv.Value.Select((v, j) => (v - z[j]) * (v - z[j])).Sum()).Key;
            if (best == label) correct++;
        }
        return correct / (double)test.Count;
    }
}

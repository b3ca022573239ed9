using Sbp.Autograd;
using Sbp.Distributed;
using Sbp.Engine.Tests.Support;
using Sbp.Tensors;

namespace Sbp.Engine.Tests.Distributed;

/// <summary>DataParallel on ranks that are threads: averaged gradients, buckets, unused parameters, the start-up check.</summary>
public class DataParallelTests
{
    const int In = 6, Hidden = 10, Out = 3;

    /// <summary>A rank's parameters (same seeds on every rank unless told), named like a module's.</summary>
    static List<(string Name, Tensor Param)> Parameters(Device device, int seedOffset = 0, bool extra = false)
    {
        var list = new List<(string, Tensor)>();
        void Add(string name, int seed, params int[] shape)
        {
            var t = Tensor.FromArray(Rand.Uniform(seed + seedOffset, (int)new Shape(shape).Numel), new Shape(shape), device).DetachFromScope();
            t.RequiresGrad = true;
            list.Add((name, t));
        }
        Add("fc1.weight", 1, Hidden, In);
        Add("fc1.bias", 2, Hidden);
        Add("fc2.weight", 3, Out, Hidden);
        Add("fc2.bias", 4, Out);
        Add("side.weight", 5, Out, In);   // used only where told (an unused parameter)
        if (extra) Add("extra", 6, 2);
        return list;
    }

    /// <summary>Mean over rows of sum of outputs of a 2-layer MLP (plus a side branch when <paramref name="useSide"/>).</summary>
    static Tensor Loss(IReadOnlyList<(string Name, Tensor Param)> p, Tensor x, bool useSide)
    {
        var h = Ops.Gelu(Ops.Linear(x, p[0].Param, p[1].Param));
        var y = Ops.Linear(h, p[2].Param, p[3].Param);
        if (useSide) y = Ops.Add(y, Ops.Linear(x, p[4].Param));
        return Ops.Mean(Ops.Mul(y, y));
    }

    static float[] Rows(int rank, int rows) => Rand.Uniform(100 + rank, rows * In);

    /// <summary>Per rank: each parameter's gradient after a synchronized backward (null: none).</summary>
    static float[]?[][] Synchronized(int ranks, Func<int, bool> useSide, DataParallelOptions options, Action<DataParallel>? inspect = null) =>
        ThreadGroupCommunicator.Run(ranks, comm =>
        {
            var device = Device.CreateCpu($"rank{comm.Rank}");
            var p = Parameters(device);
            using var ddp = new DataParallel(comm, p, options);
            inspect?.Invoke(ddp);
            using (var scope = TensorScope.Begin())
            using (var tape = Tape.Begin())
            {
                var loss = Loss(p, Tensor.FromArray(Rows(comm.Rank, 4), new Shape(4, In), device), useSide(comm.Rank));
                ddp.Attach(tape);
                tape.Backward(loss);
                ddp.Finish();
            }
            return p.Select(q => q.Param.Grad?.ToArray()).ToArray();
        });

    /// <summary>One rank's own gradients, no communication.</summary>
    static float[]?[] Local(int rank, bool useSide)
    {
        var device = Device.CreateCpu($"local{rank}");
        var p = Parameters(device);
        using var scope = TensorScope.Begin();
        using (var tape = Tape.Begin()) tape.Backward(Loss(p, Tensor.FromArray(Rows(rank, 4), new Shape(4, In), device), useSide));
        return p.Select(q => q.Param.Grad?.ToArray()).ToArray();
    }

    [TestCase(1L << 20, 1L << 20)]   // one bucket
    [TestCase(64L, 200L)]           // a bucket per parameter or two
    public void GradientsAreTheMeanOfTheRanksWhateverTheBuckets(long first, long cap)
    {
        var options = new DataParallelOptions { FirstBucketBytes = first, BucketBytes = cap };
        var got = Synchronized(2, _ => true, options);
        var a = Local(0, true);
        var b = Local(1, true);
        for (int k = 0; k < a.Length; k++)
            for (int i = 0; i < a[k]!.Length; i++)
            {
                float mean = a[k]![i] * 0.5f + b[k]![i] * 0.5f;   // scaled by 1/size before the sum, as DDP does
                Assert.That(got[0][k]![i], Is.EqualTo(mean).Within(1e-6f), $"parameter {k}[{i}]");
                Assert.That(got[1][k]![i], Is.EqualTo(got[0][k]![i]), "every rank ends with the same gradient");
            }
    }

    [Test]
    public void BucketsFollowReverseParameterOrderWithASmallFirstBucket()
    {
        // Parameters in reverse: side.weight 72 B, fc2.bias 12 B, fc2.weight 120 B, fc1.bias 40 B, fc1.weight 240 B.
        IReadOnlyList<int>? sizes = null;
        Synchronized(2, _ => true, new DataParallelOptions { FirstBucketBytes = 90, BucketBytes = 170 }, ddp => sizes ??= ddp.BucketElements);
        Assert.That(sizes, Is.EqualTo(new[] { 18 + 3, 30 + 10, 60 }));
    }

    [Test]
    public void AParameterUsedOnOneRankGetsTheAverageAndOneUsedNowhereStaysWithoutAGradient()
    {
        var options = new DataParallelOptions { FirstBucketBytes = 64, BucketBytes = 200 };
        var some = Synchronized(2, rank => rank == 1, options);
        var b = Local(1, true);
        for (int i = 0; i < b[4]!.Length; i++)
        {
            Assert.That(some[0][4]![i], Is.EqualTo(b[4]![i] * 0.5f).Within(1e-6f), "rank 0 had no gradient: it gets the average (zeros counted for itself)");
            Assert.That(some[1][4]![i], Is.EqualTo(some[0][4]![i]));
        }
        var none = Synchronized(2, _ => false, options);
        Assert.That(none[0][4], Is.Null, "no rank used it: no gradient, so the optimizer skips it as without data parallelism");
        Assert.That(none[1][4], Is.Null);
    }

    [Test]
    public void StartCopiesRankZerosParametersAndBuffersToEveryRank()
    {
        var got = ThreadGroupCommunicator.Run(2, comm =>
        {
            var device = Device.CreateCpu($"rank{comm.Rank}");
            var p = Parameters(device, seedOffset: comm.Rank * 10);
            var buffer = Tensor.Full(new Shape(3), comm.Rank + 1f, device).DetachFromScope();
            using var ddp = new DataParallel(comm, p);
            ddp.Start([("bn.running_mean", buffer)], ["setting x"]);
            return p.Select(q => q.Param.ToArray()).Append(buffer.ToArray()).ToArray();
        });
        for (int k = 0; k < got[0].Length; k++) Assert.That(got[1][k], Is.EqualTo(got[0][k]), $"tensor {k}");
        Assert.That(got[1][^1], Is.EqualTo(new[] { 1f, 1f, 1f }), "rank 0's buffer");
    }

    [Test]
    public void StartRefusesRanksWithDifferentModelsOrSettingsNamingTheRankAndTheFirstDifference()
    {
        var e = Assert.Throws<DistributedMismatchException>(() => ThreadGroupCommunicator.Run(3, comm =>
        {
            var device = Device.CreateCpu($"rank{comm.Rank}");
            using var ddp = new DataParallel(comm, Parameters(device, extra: comm.Rank == 2));
            ddp.Start([], [comm.Rank == 1 ? "setting Keep = 0.25" : "setting Keep = 0.5"]);
            return 0;
        }))!;
        Assert.That(e.Problems, Has.Count.EqualTo(2));
        Assert.That(e.Problems[0], Does.Contain("rank 1 differs from rank 0 at line 1: rank 0 has 'setting Keep = 0.5'"));
        Assert.That(e.Problems[1], Does.Contain("rank 2 differs from rank 0 at line 7: rank 0 has nothing more"));
    }

    [Test]
    public void FinishWithoutAttachAndAttachTwiceAreRefused()
    {
        ThreadGroupCommunicator.Run(2, comm =>
        {
            using var ddp = new DataParallel(comm, Parameters(Device.CreateCpu($"r{comm.Rank}")));
            Assert.That(() => ddp.Finish(), Throws.InvalidOperationException.With.Message.Contains("Attach(tape)"));
            using var tape = Tape.Begin();
            ddp.Attach(tape);
            Assert.That(() => ddp.Attach(tape), Throws.InvalidOperationException.With.Message.Contains("not finished"));
            return 0;
        });
    }
}

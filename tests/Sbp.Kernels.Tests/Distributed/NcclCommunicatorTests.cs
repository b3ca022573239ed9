using System.Collections.Concurrent;
using System.Diagnostics;
using Sbp.CudaSim;
using Sbp.Distributed;
using Sbp.Tensors;

namespace Sbp.Kernels.Tests.Distributed;

/// <summary>
/// The engine's NcclCommunicator on two simulated GPUs (SimulatedNccl: the ranks are threads of this process):
/// all-reduce and broadcast of device memory, the host collectives through the bootstrap, the asynchronous
/// completion of a collective, and what ends a rank that would otherwise wait forever.
/// </summary>
public sealed class NcclCommunicatorTests
{
    static void NoLeaks(SimulatedNcclGroup group)
    {
        foreach (var d in group.Devices) Assert.That(d.Pool.InUseBytes, Is.Zero, $"{d.Name}: tensors leaked");
    }

    [Test]
    public void AllReduceOfAThousandFloatsIsTheSumInRankOrderAndCompletesOnlyWhenEveryRankIssuedIt()
    {
        var group = SimulatedNccl.CreateGroup(2);
        var data = new[] { Rand.Uniform(11, 1000), Rand.Uniform(12, 1000) };
        var got = group.Run(comm =>
        {
            Assert.That((comm.Engine, comm.Rank, comm.Size, comm.Device), Is.EqualTo(("nccl", comm.Rank, 2, group.Devices[comm.Rank])));
            using var scope = TensorScope.Begin();
            var buffer = Tensor.FromArray(data[comm.Rank], new Shape(1000), comm.Device);
            PendingReduction pending;
            bool doneBeforeRank1Issued = false;
            if (comm.Rank == 0)
            {
                pending = comm.StartAllReduce(buffer, "test buffer");
                doneBeforeRank1Issued = pending.Test();
                comm.Barrier("rank 0 has issued");
            }
            else
            {
                comm.Barrier("rank 0 has issued");
                pending = comm.StartAllReduce(buffer, "test buffer");
            }
            pending.Wait();
            Assert.That(pending.Test(), Is.True, "a completed reduction stays complete");
            return (Sum: buffer.ToArray(), Early: doneBeforeRank1Issued);
        });
        var expected = data[0].Zip(data[1], (a, b) => a + b).ToArray();
        Assert.That(got[0].Sum, Is.EqualTo(expected), "rank 0: the float32 sum, bit for bit");
        Assert.That(got[1].Sum, Is.EqualTo(expected), "rank 1: the same bits");
        Assert.That(got[0].Early, Is.False, "not complete while rank 1 had not issued it: Test() polls, it does not wait");
        Assert.That(group.CompletedCollectives, Is.EqualTo(1));
        Assert.That(group.CommAborts, Is.EqualTo(new[] { 0, 0 }));
        NoLeaks(group);
    }

    [Test]
    public void BroadcastsOfDeviceTensorsAndTheHostCollectivesReachEveryRank()
    {
        var group = SimulatedNccl.CreateGroup(3);
        var got = group.Run(comm =>
        {
            using var scope = TensorScope.Begin();
            var ints = Tensor.FromArray(new[] { comm.Rank * 10 + 1, comm.Rank * 10 + 2, comm.Rank * 10 + 3 }, new Shape(3), comm.Device);
            comm.Broadcast(ints, root: 1, "ints from rank 1");
            var floats = Tensor.FromArray(Rand.Uniform(20 + comm.Rank, 5), new Shape(5), comm.Device);
            comm.Broadcast(floats, root: 0, "floats from rank 0");
            double sum = comm.Sum(comm.Rank + 0.5, "a host sum");
            string text = comm.Broadcast(comm.Rank == 2 ? "hello from rank 2" : "", 2, "text");
            comm.Barrier("the end");
            return (Ints: ints.ToIntArray(), Floats: floats.ToArray(), Sum: sum, Text: text, comm.Library);
        });
        for (int r = 0; r < 3; r++)
        {
            Assert.That(got[r].Ints, Is.EqualTo(new[] { 11, 12, 13 }), $"rank {r}");
            Assert.That(got[r].Floats, Is.EqualTo(Rand.Uniform(20, 5)), $"rank {r}");
            Assert.That(got[r].Sum, Is.EqualTo(0.5 + 1.5 + 2.5), $"rank {r}");
            Assert.That(got[r].Text, Is.EqualTo("hello from rank 2"), $"rank {r}");
            Assert.That(got[r].Library, Does.Contain("simulated NCCL"));
        }
        Assert.That(group.CompletedCollectives, Is.EqualTo(2), "the tensor broadcasts went through NCCL; the host collectives did not");
        NoLeaks(group);
    }

    [Test]
    public void ARankThatNeverIssuesTheAllReduceEndsTheWaitWithAnErrorNamingTheOpAndRankWithinTheTimeout()
    {
        var aborts = new ConcurrentQueue<SimulatedAbort>();
        var timeout = TimeSpan.FromSeconds(2);
        var group = SimulatedNccl.CreateGroup(2, new SimulatedNcclOptions { Timeout = timeout, OnAbort = (r, c, m) => aborts.Enqueue(new(r, c, m)) });
        var got = group.Run(comm =>
        {
            using var scope = TensorScope.Begin();
            var buffer = Tensor.Zeros(new Shape(16), comm.Device);
            if (comm.Rank == 1) return (Error: (Exception?)null, Seconds: 0.0);   // a hung rank: it never issues the all-reduce
            var clock = Stopwatch.StartNew();
            try
            {
                comm.StartAllReduce(buffer, "gradient bucket 0 of 2").Wait();
                return (null, clock.Elapsed.TotalSeconds);
            }
            catch (DistributedException e)
            {
                return (e, clock.Elapsed.TotalSeconds);
            }
        });
        var error = got[0].Error;
        Assert.That(error, Is.Not.Null, "rank 0's wait ends with an error");
        Assert.That(error!.Message, Does.StartWith("rank 0 of 2: NCCL all-reduce of gradient bucket 0 of 2 waited")
            .And.Contain("timeout 2 s").And.Contain("a rank is lost or hung").And.Contain("ncclCommAbort"));
        Assert.That(got[0].Seconds, Is.GreaterThanOrEqualTo(timeout.TotalSeconds).And.LessThan(timeout.TotalSeconds + 10),
            "bounded: the timeout (plus room for a loaded test machine), not forever");
        Assert.That(group.CommAborts[0], Is.EqualTo(1), "rank 0 aborted its NCCL communicator");
        var abort = aborts.Single(a => a.Rank == 0);
        Assert.That(abort.Code, Is.EqualTo(3));
        Assert.That(abort.Message, Is.EqualTo(error.Message), "then the bootstrap's Abort, which ends every rank under mpirun");
        Assert.That(group.Aborts.Select(a => a.Rank), Does.Contain(0));
        NoLeaks(group);
    }

    [Test]
    public void RanksThatIssueDifferentCollectivesGetAnAsynchronousInvalidUsageNamingBoth()
    {
        var group = SimulatedNccl.CreateGroup(2, new SimulatedNcclOptions { Timeout = TimeSpan.FromSeconds(10), OnAbort = (_, _, _) => { } });
        var got = group.Run(comm =>
        {
            using var scope = TensorScope.Begin();
            var buffer = Tensor.Zeros(new Shape(comm.Rank == 0 ? 10 : 12), comm.Device);
            var e = Assert.Throws<DistributedException>(() => comm.StartAllReduce(buffer, "bucket 0").Wait())!;
            return e.Message;
        });
        foreach (var (message, rank) in got.Select((m, r) => (m, r)))
            Assert.That(message, Does.StartWith($"rank {rank} of 2: NCCL all-reduce of bucket 0 failed with ncclInvalidUsage (5)")
                .And.Contain("ncclAllReduce(count 10, Float32, Sum) on rank").And.Contain("ncclAllReduce(count 12, Float32, Sum) on rank"));
        NoLeaks(group);
    }

    [Test]
    public void WritingASendBufferWhileItsAllReduceIsInFlightIsReportedAsARace()
    {
        var group = SimulatedNccl.CreateGroup(2, new SimulatedNcclOptions { Timeout = TimeSpan.FromSeconds(10), OnAbort = (_, _, _) => { } });
        var got = group.Run(comm =>
        {
            using var scope = TensorScope.Begin();
            var buffer = Tensor.Full(new Shape(8), 1f, comm.Device);
            if (comm.Rank == 1) comm.Barrier("rank 0 wrote");
            var pending = comm.StartAllReduce(buffer, "bucket 0");
            if (comm.Rank == 0)
            {
                buffer.Backend.Fill(buffer, 5f);   // the compute stream writes it before the collective read it
                comm.Barrier("rank 0 wrote");
            }
            try
            {
                pending.Wait();
                return "";
            }
            catch (DistributedException e)
            {
                return e.Message;
            }
        });
        Assert.That(got[0], Does.Contain("rank 0's send buffer of ncclAllReduce changed while it was in flight"));
        Assert.That(got[1], Is.Empty, "rank 1 did nothing wrong");
        NoLeaks(group);
    }
}

using System.Collections.Concurrent;
using System.Diagnostics;
using Sbp.Autograd;
using Sbp.CudaSim;
using Sbp.Distributed;
using Sbp.Nn;
using Sbp.Optim;
using Sbp.Rng;
using Sbp.Tensors;

namespace Sbp.Kernels.Tests.Distributed;

/// <summary>
/// DataParallel over NcclCommunicator on two simulated GPUs: gradient buckets copied on each device, all-reduced by
/// (simulated) NCCL on the communication stream during backward, waited for and copied back; against one CPU device
/// that trains on the whole batch. Then a fault injected in the middle of backward.
/// </summary>
public sealed class NcclDataParallelTests
{
    const int In = 4, Hidden = 8, Out = 3, Batch = 8, Steps = 3;
    const float LearningRate = 1e-2f;

    /// <summary>Small caps: reversed, the parameters are fc2.bias 12 B, fc2.weight 96 B, fc1.bias 32 B, fc1.weight 128 B: four buckets.</summary>
    static readonly DataParallelOptions SmallBuckets = new() { FirstBucketBytes = 40, BucketBytes = 100 };

    static readonly float[] X = Rand.Uniform(1, Batch * In), Y = Rand.Uniform(2, Batch * Out);

    /// <summary>The same initial weights on every device (same seed).</summary>
    static Mlp Model(Device device) => new(In, Hidden, Out, new RandomSource(7), device: device);

    /// <summary>Rows [first, first + rows) of the batch: mean squared error of the MLP.</summary>
    static Tensor Loss(Mlp model, Device device, int first, int rows)
    {
        var x = Tensor.FromArray(X[(first * In)..((first + rows) * In)], new Shape(rows, In), device);
        var y = Tensor.FromArray(Y[(first * Out)..((first + rows) * Out)], new Shape(rows, Out), device);
        return Ops.MseLoss(model.Forward(x), y);
    }

    static Dictionary<string, float[]> Weights(Mlp model) => model.NamedParameters().ToDictionary(p => p.Name, p => p.Tensor.ToArray());

    /// <summary>One CPU device, the whole batch.</summary>
    static Dictionary<string, float[]> Reference()
    {
        var cpu = Device.CreateCpu("reference");
        using var model = Model(cpu);
        using var optimizer = new AdamW(model.NamedParameters(), LearningRate);
        for (int step = 0; step < Steps; step++)
        {
            using var scope = TensorScope.Begin();
            using (var tape = Tape.Begin()) tape.Backward(Loss(model, cpu, 0, Batch));
            optimizer.Step();
            optimizer.ZeroGrad();
        }
        return Weights(model);
    }

    [Test]
    public void TwoSimulatedGpusOnHalfTheBatchEachTrainAsOneCpuOnTheWholeBatch()
    {
        var group = SimulatedNccl.CreateGroup(2);
        var got = group.Run(comm =>
        {
            using var model = Model(comm.Device);
            using var optimizer = new AdamW(model.NamedParameters(), LearningRate);
            using var ddp = new DataParallel(comm, model.NamedParameters(), SmallBuckets);
            ddp.Start([], ["model mlp 4-8-3", "adamw lr 0.01"]);   // the check over the bootstrap, then ncclBroadcast of every parameter
            int rows = Batch / comm.Size;
            for (int step = 0; step < Steps; step++)
            {
                using var scope = TensorScope.Begin();
                using (var tape = Tape.Begin())
                {
                    var loss = Loss(model, comm.Device, comm.Rank * rows, rows);
                    ddp.Attach(tape);
                    tape.Backward(loss);
                    ddp.Finish();
                }
                optimizer.Step();
                optimizer.ZeroGrad();
            }
            return (Weights: Weights(model), Buckets: ddp.BucketElements, ddp.LastTiming);
        });

        Assert.That(got[0].Buckets, Is.EqualTo(new[] { 3, 24, 8, 32 }), "four buckets of gradient elements");
        Assert.That(group.CompletedCollectives, Is.EqualTo(4 + 8 * 4 + Steps * 4), "at start 4 parameter broadcasts and 8 timed rounds of the 4 buckets, then 4 bucket all-reduces per step");
        Assert.That(got[0].LastTiming.Buckets, Is.EqualTo(4));
        var launches = SimulatedCuda.Launches(group.Devices[1]);
        Assert.That(launches.Keys, Does.Contain("strided_copy_f32").And.Contain("scale_f32").And.Contain("adamw_f32"),
            "the buckets were filled, scaled by 1/size and the weights updated by the CUDA backend's kernels on the simulated GPU");
        var reference = Reference();
        double worst = 0;
        foreach (var (name, expected) in reference)
        {
            Assert.That(got[1].Weights[name], Is.EqualTo(got[0].Weights[name]), $"{name}: both ranks hold the same bits");
            for (int i = 0; i < expected.Length; i++) worst = Math.Max(worst, Math.Abs(got[0].Weights[name][i] - expected[i]));
        }
        // Differences come from the order of summation (each rank's half-batch mean scaled by 1/2 and then summed, against
        // one mean of 8 rows), the simulator's float64 reference cuBLAS against the CPU SGEMM, and the PTX GELU. Measured:
        // 3.0e-8 after 3 AdamW steps at lr 1e-2 (a step moves a weight by up to 1e-2); the bound leaves 30x for other seeds.
        Assert.That(worst, Is.LessThan(1e-6), "largest weight difference from the CPU on the whole batch");
        TestContext.Out.WriteLine($"largest weight difference from the CPU reference after {Steps} AdamW steps: {worst:G3}");
        foreach (var d in group.Devices) Assert.That(d.Pool.InUseBytes, Is.Zero, $"{d.Name}: tensors leaked");
    }

    [Test]
    public void AnAsyncErrorInjectedInTheMiddleOfBackwardEndsBothRanksWithErrorsNamingTheRankAndTheBucket()
    {
        var aborts = new ConcurrentQueue<SimulatedAbort>();
        var timeout = TimeSpan.FromSeconds(2);
        var group = SimulatedNccl.CreateGroup(2, new SimulatedNcclOptions
        {
            Timeout = timeout,
            OnAbort = (r, c, m) => aborts.Enqueue(new(r, c, m)),
            Fault = new SimulatedNcclFault(Rank: 1, Collective: 1, SimulatedNcclFaultKind.AsyncError),   // rank 1's second bucket
        });
        var clock = Stopwatch.StartNew();
        var got = group.Run(comm =>
        {
            using var model = Model(comm.Device);
            using var ddp = new DataParallel(comm, model.NamedParameters(), SmallBuckets);
            using var scope = TensorScope.Begin();
            using var tape = Tape.Begin();
            var loss = Loss(model, comm.Device, comm.Rank * 4, 4);
            try
            {
                ddp.Attach(tape);
                tape.Backward(loss);
                ddp.Finish();
                return "";
            }
            catch (DistributedException e)
            {
                return e.Message;
            }
        });
        Assert.That(clock.Elapsed, Is.LessThan(timeout * 2 + TimeSpan.FromSeconds(20)), "no rank hangs (the timeout, plus room for a loaded test machine)");
        Assert.That(got[1], Does.StartWith("rank 1 of 2: NCCL all-reduce of gradient bucket").And.Contain("failed with ncclSystemError (2)")
            .And.Contain("simulated fault: rank 1's ncclAllReduce #1"), "the rank with the error sees it at its next poll");
        Assert.That(got[0], Does.StartWith("rank 0 of 2: NCCL all-reduce of gradient bucket 1 of 4 waited").And.Contain("a rank is lost or hung"),
            "the other rank's bucket never completes: it ends at the timeout");
        Assert.That(group.CommAborts, Is.EqualTo(new[] { 1, 1 }), "both aborted their NCCL communicators");
        Assert.That(aborts.Select(a => (a.Rank, a.Code)).Order(), Is.EqualTo(new[] { (0, 3), (1, 5) }));
    }
}

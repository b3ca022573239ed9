using Sbp.Backends;
using Sbp.Memory;
using Sbp.Optim;
using Sbp.Rng;
using Sbp.Tensors;

namespace Sbp.Kernels.Tests.Cuda;

/// <summary>Softmax, layer norm, batch norm, losses, optimizers and dropout masks on CUDA against the CPU backend.</summary>
public sealed class CudaNormLossTests : CudaTest
{
    [TestCase(new[] { 5, 33 }, 1, false)]
    [TestCase(new[] { 5, 33 }, 1, true)]
    [TestCase(new[] { 3, 4, 6 }, 1, false)]
    [TestCase(new[] { 3, 4, 6 }, 0, true)]
    public void SoftmaxForwardAndBackwardMatchCpu(int[] shape, int dim, bool log)
    {
        int n = (int)new Shape(shape).Numel;
        var x = Pair(Rand.Uniform(1, n, -3f, 3f), shape);
        var y = Out(shape);
        Cpu.Backend.Softmax(x.Cpu, y.Cpu, dim, log);
        Gpu.Backend.Softmax(x.Gpu, y.Gpu, dim, log);
        Close(y, 1e-5, 1e-6, "Softmax");
        var dy = Pair(Rand.Uniform(2, n), shape);
        var dx = Out(shape);
        Cpu.Backend.SoftmaxBackward(y.Cpu, dy.Cpu, dx.Cpu, dim, log);
        Gpu.Backend.SoftmaxBackward(y.Gpu, dy.Gpu, dx.Gpu, dim, log);
        Close(dx, 1e-5, 1e-5, "SoftmaxBackward");
    }

    [TestCase(true)]
    [TestCase(false)]
    public void LayerNormMatchesCpu(bool affine) => LayerNormForwardAndBackwardMatchCpu(6, 40, affine, bias: affine);

    /// <summary>Layer norm forward (y, rstd) and backward (dx, dweight, dbias) on both devices, compared.</summary>
    void LayerNormForwardAndBackwardMatchCpu(int rows, int cols, bool affine, bool bias)
    {
        var x = Pair(Rand.Uniform(3, rows * cols, -2f, 2f), rows, cols);
        var w = affine ? Pair(Rand.Uniform(4, cols), cols) : default;
        var b = bias ? Pair(Rand.Uniform(5, cols), cols) : default;
        var (y, mean, rstd) = (Out(rows, cols), Out(rows), Out(rows));
        Cpu.Backend.LayerNormForward(x.Cpu, w.Cpu, b.Cpu, 1e-5f, y.Cpu, mean.Cpu, rstd.Cpu);
        Gpu.Backend.LayerNormForward(x.Gpu, w.Gpu, b.Gpu, 1e-5f, y.Gpu, mean.Gpu, rstd.Gpu);
        Close(y, 1e-5, 1e-5, "LayerNorm y");
        Close(rstd, 1e-5, 1e-6, "LayerNorm rstd");
        var dy = Pair(Rand.Uniform(6, rows * cols), rows, cols);
        var (dx, dw, db) = (Out(rows, cols), Out(cols), Out(cols));
        Cpu.Backend.LayerNormBackward(dy.Cpu, x.Cpu, w.Cpu, mean.Cpu, rstd.Cpu, dx.Cpu, dw.Cpu, db.Cpu);
        Gpu.Backend.LayerNormBackward(dy.Gpu, x.Gpu, w.Gpu, mean.Gpu, rstd.Gpu, dx.Gpu, dw.Gpu, db.Gpu);
        Close(dx, 1e-4, 1e-5, "LayerNorm dx");
        Close(dw, 1e-4, 1e-5, "LayerNorm dweight");
        Close(db, 1e-4, 1e-5, "LayerNorm dbias");
    }

    /// <summary>
    /// Rows up to 6112 columns keep the weight and bias gradient partials in layer_norm_bwd_f32's shared memory (8 bytes a column
    /// next to the static 256, within CUDA's 48 KiB, which the simulator enforces as a GPU does: 6113..6144 columns used to fail);
    /// wider rows take them as column sums.
    /// </summary>
    [TestCase(6112)]
    [TestCase(6113)]
    [TestCase(6144)]
    [TestCase(9000)]
    public void LayerNormBackwardMatchesCpuAtAndBeyondTheSharedMemoryLimit(int cols) => LayerNormForwardAndBackwardMatchCpu(3, cols, affine: true, bias: false);

    [Test]
    public void TheLayerNormColumnLimitCountsTheModulesStaticSharedMemory()
    {
        var module = Sbp.PtxSim.PtxModule.Parse(Sbp.Backends.Cuda.PtxLibrary.ModuleText("layernorm"), "layernorm.ptx");
        Assert.That(module.StaticSharedBytes("layer_norm_bwd_f32"), Is.EqualTo(Sbp.Backends.Cuda.CudaBackend.LayerNormStaticShared),
            "the static part before the dynamic accumulators (16-byte aligned already); CudaBackend.LayerNormMaxParamCols is derived from it");
        Assert.That(Sbp.Backends.Cuda.CudaBackend.LayerNormStaticShared % 16, Is.Zero);
        Assert.That(Sbp.Backends.Cuda.CudaBackend.LayerNormMaxParamCols * 8 + Sbp.Backends.Cuda.CudaBackend.LayerNormStaticShared, Is.LessThanOrEqualTo(48 * 1024));
    }

    [TestCase(true)]
    [TestCase(false)]
    public void BatchNormTrainingMatchesCpu(bool affine)
    {
        int n = 3, c = 4, s = 10;
        var x = Pair(Rand.Uniform(7, n * c * s, -2f, 3f), n, c, s);
        var w = affine ? Pair(Rand.Uniform(8, c), c) : default;
        var b = affine ? Pair(Rand.Uniform(9, c), c) : default;
        var rm = Pair(Rand.Uniform(10, c), c);
        var rv = Pair(Rand.Positive(11, c), c);
        var (y, sm, si) = (Out(n, c, s), Out(c), Out(c));
        Cpu.Backend.BatchNormTrainForward(x.Cpu, w.Cpu, b.Cpu, rm.Cpu, rv.Cpu, 0.1f, 1e-5f, y.Cpu, sm.Cpu, si.Cpu);
        Gpu.Backend.BatchNormTrainForward(x.Gpu, w.Gpu, b.Gpu, rm.Gpu, rv.Gpu, 0.1f, 1e-5f, y.Gpu, sm.Gpu, si.Gpu);
        Close(y, 1e-5, 1e-5, "BatchNorm y");
        Close(sm, 1e-5, 1e-6, "BatchNorm saveMean");
        Close(si, 1e-5, 1e-6, "BatchNorm saveInvStd");
        Close(rm, 1e-5, 1e-6, "BatchNorm runningMean");
        Close(rv, 1e-5, 1e-6, "BatchNorm runningVar (unbiased)");
        var dy = Pair(Rand.Uniform(12, n * c * s), n, c, s);
        var (dx, dw, db) = (Out(n, c, s), Out(c), Out(c));
        Cpu.Backend.BatchNormBackward(dy.Cpu, x.Cpu, w.Cpu, sm.Cpu, si.Cpu, dx.Cpu, dw.Cpu, db.Cpu, 1e-5f);
        Gpu.Backend.BatchNormBackward(dy.Gpu, x.Gpu, w.Gpu, sm.Gpu, si.Gpu, dx.Gpu, dw.Gpu, db.Gpu, 1e-5f);
        Close(dx, 1e-4, 1e-5, "BatchNorm dx");
        Close(dw, 1e-4, 1e-5, "BatchNorm dweight");
        Close(db, 1e-4, 1e-5, "BatchNorm dbias");
    }

    [Test]
    public void BatchNormInferenceMatchesCpu()
    {
        int n = 2, c = 3, s = 7;
        var x = Pair(Rand.Uniform(13, n * c * s), n, c, s);
        var (w, b) = (Pair(Rand.Uniform(14, c), c), Pair(Rand.Uniform(15, c), c));
        var (mean, inv) = (Pair(Rand.Uniform(16, c), c), Pair(Rand.Positive(17, c), c));
        var y = Out(n, c, s);
        Cpu.Backend.BatchNormInferenceForward(x.Cpu, w.Cpu, b.Cpu, mean.Cpu, inv.Cpu, y.Cpu);
        Gpu.Backend.BatchNormInferenceForward(x.Gpu, w.Gpu, b.Gpu, mean.Gpu, inv.Gpu, y.Gpu);
        Close(y, 1e-5, 1e-6, "BatchNormInference y");
        var dy = Pair(Rand.Uniform(18, n * c * s), n, c, s);
        var (dx, dw, db) = (Out(n, c, s), Out(c), Out(c));
        Cpu.Backend.BatchNormInferenceBackward(dy.Cpu, x.Cpu, w.Cpu, mean.Cpu, inv.Cpu, dx.Cpu, dw.Cpu, db.Cpu);
        Gpu.Backend.BatchNormInferenceBackward(dy.Gpu, x.Gpu, w.Gpu, mean.Gpu, inv.Gpu, dx.Gpu, dw.Gpu, db.Gpu);
        Close(dx, 1e-5, 1e-6, "BatchNormInference dx");
        Close(dw, 1e-5, 1e-5, "BatchNormInference dweight");
        Close(db, 1e-5, 1e-5, "BatchNormInference dbias");
    }

    [TestCase(0f, false)]
    [TestCase(0.1f, true)]
    public void CrossEntropyMatchesCpu(float smoothing, bool weighted)
    {
        int rows = 5, classes = 11;
        var z = Pair(Rand.Uniform(19, rows * classes, -3f, 3f), rows, classes);
        var t = PairInt(Rand.Ints(20, rows, 0, classes), rows);
        var w = weighted ? Pair(Rand.Positive(21, classes), classes) : default;
        var (loss, lse) = (Out(rows), Out(rows));
        Cpu.Backend.CrossEntropyForward(z.Cpu, t.Cpu, w.Cpu, smoothing, loss.Cpu, lse.Cpu);
        Gpu.Backend.CrossEntropyForward(z.Gpu, t.Gpu, w.Gpu, smoothing, loss.Gpu, lse.Gpu);
        Close(loss, 1e-5, 1e-5, "CrossEntropy loss");
        var g = Pair(Rand.Uniform(22, rows), rows);
        var dz = Out(rows, classes);
        Cpu.Backend.CrossEntropyBackward(z.Cpu, t.Cpu, w.Cpu, smoothing, lse.Cpu, g.Cpu, dz.Cpu);
        Gpu.Backend.CrossEntropyBackward(z.Gpu, t.Gpu, w.Gpu, smoothing, lse.Gpu, g.Gpu, dz.Gpu);
        Close(dz, 1e-5, 1e-5, "CrossEntropy dlogits");
    }

    [TestCase(0)]
    [TestCase(1)]
    [TestCase(6)]
    public void BceWithLogitsMatchesCpu(int posWeights)
    {
        int rows = 4, cols = 6;
        var x = Pair(Rand.Uniform(23, rows * cols, -6f, 6f), rows, cols);
        var t = Pair(Rand.Uniform(24, rows * cols, 0f, 1f), rows, cols);
        var pw = posWeights == 0 ? default : Pair(Rand.Positive(25, posWeights), posWeights);
        var loss = Out(rows, cols);
        Cpu.Backend.BceWithLogitsForward(x.Cpu, t.Cpu, pw.Cpu, loss.Cpu);
        Gpu.Backend.BceWithLogitsForward(x.Gpu, t.Gpu, pw.Gpu, loss.Gpu);
        Close(loss, 1e-5, 2e-6, "Bce loss");
        var g = Pair(Rand.Uniform(26, rows * cols), rows, cols);
        var (dx, dt) = (Out(rows, cols), Out(rows, cols));
        Cpu.Backend.BceWithLogitsBackward(x.Cpu, t.Cpu, pw.Cpu, g.Cpu, dx.Cpu, dt.Cpu);
        Gpu.Backend.BceWithLogitsBackward(x.Gpu, t.Gpu, pw.Gpu, g.Gpu, dx.Gpu, dt.Gpu);
        Close(dx, 1e-5, 2e-6, "Bce dlogits");
        Close(dt, 1e-5, 2e-6, "Bce dtargets");
    }

    static IEnumerable<TestCaseData> Optimizers()
    {
        yield return Case("sgd", p => new Sgd(p, 0.1f), []);
        yield return Case("sgd (momentum, dampening, weight decay)", p => new Sgd(p, 0.1f, momentum: 0.9f, dampening: 0.1f, weightDecay: 0.01f), ["momentum_buffer"]);
        yield return Case("sgd (nesterov)", p => new Sgd(p, 0.05f, momentum: 0.8f, nesterov: true, weightDecay: 0.01f), ["momentum_buffer"]);
        yield return Case("adamw", p => new AdamW(p, 1e-2f, eps: 1e-6f, weightDecay: 0.05f), ["exp_avg", "exp_avg_sq"]);

        static TestCaseData Case(string name, Func<(string, Tensor)[], Optimizer> create, string[] stateKinds) =>
            new TestCaseData(create, stateKinds).SetName($"OptimizersMatchCpuBitForBit({name})");
    }

    /// <summary>
    /// Four steps of the engine's optimizers on both devices; after each, the parameters and the whole
    /// state (every tensor of StateDict: momentum buffers, AdamW's first and second moments; every scalar:
    /// the step count, the per-parameter step counts, lr) are bitwise equal. Parameter "b" has no gradient
    /// at step 2, so its step count (and AdamW's bias correction) falls behind "w"'s. The kernels do the
    /// CPU's float32 operations in its order, with IEEE sqrt.rn/div.rn. On a real GPU ptxas may contract a
    /// plain mul.f32 + add.f32 into fma (PTX allows it without .rn): this is the check to run there first.
    /// </summary>
    [TestCaseSource(nameof(Optimizers))]
    public void OptimizersMatchCpuBitForBit(Func<(string, Tensor)[], Optimizer> create, string[] stateKinds)
    {
        var shapes = new Dictionary<string, int[]> { ["w"] = [7, 10], ["b"] = [70] };
        (string, Tensor)[] Parameters(Device device) => [.. shapes.Select((kv, i) =>
        {
            var t = Tensor.FromArray(Rand.Uniform(27 + i, (int)new Shape(kv.Value).Numel), new Shape(kv.Value), device);
            t.RequiresGrad = true;
            return (kv.Key, t);
        })];
        var cpuParams = Parameters(Cpu);
        var gpuParams = Parameters(Gpu);
        using var cpu = create(cpuParams);
        using var gpu = create(gpuParams);
        for (int step = 1; step <= 4; step++)
        {
            for (int i = 0; i < shapes.Count; i++)
            {
                if (step == 2 && cpuParams[i].Item1 == "b") continue;
                var grad = Rand.Uniform(100 * step + i, (int)cpuParams[i].Item2.Numel);
                foreach (var (_, p) in new[] { cpuParams[i], gpuParams[i] })
                    p.Grad = Tensor.FromArray(grad, p.Shape, p.Device, MemoryCategory.Gradient).DetachFromScope();
            }
            cpu.Step();
            gpu.Step();
            cpu.ZeroGrad();
            gpu.ZeroGrad();
            for (int i = 0; i < shapes.Count; i++)
                Support.Check.Exact(cpuParams[i].Item2.ToArray(), gpuParams[i].Item2.ToArray(), $"step {step}: parameter {cpuParams[i].Item1}");
            var (want, got) = (cpu.StateDict(), gpu.StateDict());
            Assert.That(want.Tensors.Keys, Is.EquivalentTo(stateKinds.SelectMany(k => shapes.Keys.Select(n => $"{k}.{n}"))), $"step {step}: CPU state tensors");
            Assert.That(got.Tensors.Keys, Is.EquivalentTo(want.Tensors.Keys), $"step {step}: CUDA state tensors");
            foreach (var (key, t) in want.Tensors)
                Support.Check.Exact(t.ToArray(), got.Tensors[key].ToArray(), $"step {step}: state {key}");
            Assert.That(got.Scalars, Is.EquivalentTo(want.Scalars), $"step {step}: state scalars");
            Assert.That(want.Scalars["step.w"] - want.Scalars["step.b"], Is.EqualTo(step >= 2 ? 1 : 0), "b skipped step 2");
        }
    }

    [Test]
    public void SumOfSquaresMatchesCpu()
    {
        var x = Pair(Rand.Uniform(32, 10000), 10000);
        double cpu = Cpu.Backend.SumOfSquares(x.Cpu), gpu = Gpu.Backend.SumOfSquares(x.Gpu);
        Assert.That(gpu, Is.EqualTo(cpu).Within(1e-5 * cpu));
        Assert.That(Gpu.Backend.SumOfSquares(x.Gpu), Is.EqualTo(gpu), "deterministic");
    }

    [TestCase(0UL)]
    [TestCase(6UL)]
    public void BernoulliMaskIsTheCpusBitForBit(ulong offset)
    {
        var mask = Out(101);
        var stream = new RandomStream(0x1234_5678_9ABCUL, offset);
        Cpu.Backend.BernoulliMask(mask.Cpu, stream, 0.7f, 1f / 0.7f);
        Gpu.Backend.BernoulliMask(mask.Gpu, stream, 0.7f, 1f / 0.7f);
        Exact(mask, "BernoulliMask");
    }
}

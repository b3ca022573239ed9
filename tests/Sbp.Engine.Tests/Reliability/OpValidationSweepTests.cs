using Sbp.Autograd;
using Sbp.Engine.Tests.Support;
using Sbp.Memory;
using Sbp.Rng;
using Sbp.Stochastic;
using Sbp.Tensors;

namespace Sbp.Engine.Tests.Reliability;

/// <summary>
/// Every public op, called with (a) a tensor of the wrong dtype, (b) operands on two devices and
/// (c) a disposed operand, must throw ArgumentException (ShapeMismatchException is one) or
/// ObjectDisposedException whose message names the op, and leave nothing allocated.
/// Each case lists its tensor operands (shape, dtype) and a call over them; the valid call must
/// succeed, so a case whose arguments are wrong for other reasons cannot pass unnoticed.
/// </summary>
public class OpValidationSweepTests
{
    /// <summary>A tensor operand of a case: its shape and dtype, and whether the op accepts other dtypes too.</summary>
    public sealed record Operand(int[] Shape, DType DType = DType.Float32, bool AnyDType = false, bool Data = false);

    public sealed record OpCase(string Name, string OpName, Operand[] Operands, Func<Tensor[], Tensor> Call)
    {
        public override string ToString() => Name;
    }

    static Operand F(params int[] shape) => new(shape);
    static Operand I(params int[] shape) => new(shape, DType.Int32, Data: true);

    static OpCase C(string name, string op, Operand[] operands, Func<Tensor[], Tensor> call) => new(name, op, operands, call);

    static readonly RandomSource Rng = new(7);

    public static IEnumerable<OpCase> Cases()
    {
        yield return C("Add", "add", [F(2, 3), F(3)], t => Ops.Add(t[0], t[1]));
        yield return C("Sub", "sub", [F(2, 3), F(2, 3)], t => Ops.Sub(t[0], t[1]));
        yield return C("Mul", "mul", [F(2, 3), F(2, 3)], t => Ops.Mul(t[0], t[1]));
        yield return C("Div", "div", [F(2, 3), F(2, 3)], t => Ops.Div(t[0], t[1]));
        yield return C("Pow", "pow", [F(2, 3), F(2, 3)], t => Ops.Pow(t[0], t[1]));
        yield return C("AddScalar", "add_scalar", [F(2, 3)], t => Ops.Add(t[0], 1f));
        yield return C("SubScalar", "add_scalar", [F(2, 3)], t => Ops.Sub(t[0], 1f));
        yield return C("RSubScalar", "rsub_scalar", [F(2, 3)], t => Ops.Sub(1f, t[0]));
        yield return C("MulScalar", "mul_scalar", [F(2, 3)], t => Ops.Mul(t[0], 2f));
        yield return C("DivScalar", "mul_scalar", [F(2, 3)], t => Ops.Div(t[0], 2f));
        yield return C("RDivScalar", "rdiv_scalar", [F(2, 3)], t => Ops.Div(2f, t[0]));
        yield return C("Neg", "neg", [F(2, 3)], t => Ops.Neg(t[0]));
        yield return C("Exp", "exp", [F(2, 3)], t => Ops.Exp(t[0]));
        yield return C("Log", "log", [F(2, 3)], t => Ops.Log(t[0]));
        yield return C("Sqrt", "sqrt", [F(2, 3)], t => Ops.Sqrt(t[0]));
        yield return C("PowScalar", "pow_scalar", [F(2, 3)], t => Ops.Pow(t[0], 2f));
        yield return C("Relu", "relu", [F(2, 3)], t => Ops.Relu(t[0]));
        yield return C("Gelu", "gelu", [F(2, 3)], t => Ops.Gelu(t[0]));
        yield return C("GeluTanh", "gelu_tanh", [F(2, 3)], t => Ops.Gelu(t[0], tanhApproximation: true));
        yield return C("BroadcastTo", "broadcast_to", [F(3)], t => Ops.BroadcastTo(t[0], new Shape(2, 3)));
        yield return C("SumTo", "sum_to", [F(2, 3)], t => Ops.SumTo(t[0], new Shape(3)));
        yield return C("Sum", "sum", [F(2, 3)], t => Ops.Sum(t[0]));
        yield return C("SumDims", "sum", [F(2, 3)], t => Ops.Sum(t[0], [1], keepDim: true));
        yield return C("Mean", "mean", [F(2, 3)], t => Ops.Mean(t[0]));
        yield return C("MeanDims", "mean", [F(2, 3)], t => Ops.Mean(t[0], [0]));
        yield return C("Max", "max", [F(2, 3)], t => Ops.Max(t[0]));
        yield return C("MaxDims", "max", [F(2, 3)], t => Ops.Max(t[0], [1]));
        yield return C("Softmax", "softmax", [F(2, 3)], t => Ops.Softmax(t[0]));
        yield return C("LogSoftmax", "log_softmax", [F(2, 3)], t => Ops.LogSoftmax(t[0], 0));
        yield return C("Reshape", "reshape", [new Operand([2, 3], AnyDType: true)], t => Ops.Reshape(t[0], 3, 2));
        yield return C("Permute", "permute", [F(2, 3, 4)], t => Ops.Permute(t[0], 2, 0, 1));
        yield return C("Transpose", "permute", [F(2, 3)], t => Ops.Transpose(t[0], 0, 1));
        yield return C("Slice", "slice", [F(4, 3)], t => Ops.Slice(t[0], 0, 1, 2));
        yield return C("Concat", "concat", [F(2, 3), F(1, 3)], t => Ops.Concat([t[0], t[1]], 0));
        yield return C("Matmul", "matmul", [F(2, 3), F(3, 4)], t => Ops.Matmul(t[0], t[1]));
        yield return C("MatmulBatched", "matmul", [F(2, 2, 3), F(3, 4)], t => Ops.Matmul(t[0], t[1]));
        yield return C("Linear", "linear", [F(2, 3), F(4, 3), F(4)], t => Ops.Linear(t[0], t[1], t[2]));
        yield return C("IndexSelect", "index_select", [F(4, 3), I(2)], t => Ops.IndexSelect(t[0], 0, t[1]));
        yield return C("IndexAdd", "index_add", [F(4, 3), I(2), F(2, 3)], t => Ops.IndexAdd(t[0], 0, t[1], t[2]));
        yield return C("GradMask", "grad_mask", [F(4, 3)], t => Ops.GradMask(t[0], 0, KeepMask.FromIndices(4, [0, 2])));
        yield return C("LayerNorm", "layer_norm", [F(2, 3), F(3), F(3)], t => Ops.LayerNorm(t[0], [3], t[1], t[2]));
        yield return C("BatchNorm", "batch_norm", [F(2, 3, 2, 2), F(3), F(3), F(3), F(3)],
            t => Ops.BatchNorm(t[0], t[1], t[2], t[3], t[4], BatchNormMode.Train));
        yield return C("Conv2d", "conv2d", [F(1, 2, 4, 4), F(3, 2, 3, 3), F(3)], t => Ops.Conv2d(t[0], t[1], t[2]));
        yield return C("Conv3d", "conv3d", [F(1, 2, 2, 4, 4), F(3, 2, 1, 3, 3), F(3)], t => Ops.Conv3d(t[0], t[1], t[2]));
        yield return C("MaxPool2d", "max_pool2d", [F(1, 2, 4, 4)], t => Ops.MaxPool2d(t[0], [2]));
        yield return C("MaxPool3d", "max_pool3d", [F(1, 2, 2, 4, 4)], t => Ops.MaxPool3d(t[0], [1, 2, 2]));
        yield return C("AvgPool2d", "avg_pool2d", [F(1, 2, 4, 4)], t => Ops.AvgPool2d(t[0], [2]));
        yield return C("AvgPool3d", "avg_pool3d", [F(1, 2, 2, 4, 4)], t => Ops.AvgPool3d(t[0], [1, 2, 2]));
        yield return C("GlobalAvgPool", "global_avg_pool", [F(1, 2, 4, 4)], t => Ops.GlobalAvgPool(t[0]));
        yield return C("Dropout", "dropout", [F(2, 3)], t => Ops.Dropout(t[0], 0.5f, Rng));
        yield return C("DropPath", "drop_path", [F(2, 3)], t => Ops.DropPath(t[0], 0.5f, Rng));
        yield return C("Attention", "scaled_dot_product_attention", [F(1, 2, 3, 4), F(1, 2, 5, 4), F(1, 2, 5, 4), F(2, 3, 5), F(3, 5)],
            t => Ops.ScaledDotProductAttention(t[0], t[1], t[2], t[3], t[4]));
        yield return C("CrossEntropy", "cross_entropy", [F(2, 3), I(2), F(3)], t => Ops.CrossEntropy(t[0], t[1], 0.1f, t[2]));
        yield return C("BceWithLogits", "binary_cross_entropy_with_logits", [F(2, 3), F(2, 3), F(3)],
            t => Ops.BinaryCrossEntropyWithLogits(t[0], t[1], t[2]));
        yield return C("MseLoss", "mse_loss", [F(2, 3), F(2, 3)], t => Ops.MseLoss(t[0], t[1]));
        yield return C("Roll", "roll", [F(2, 3)], t => Ops.Roll(t[0], [1], [1]));
        yield return C("Pad", "pad", [F(2, 3)], t => Ops.Pad(t[0], [1, 1]));
        yield return C("WindowPartition3d", "window_partition3d", [F(1, 2, 4, 4, 3)], t => Ops.WindowPartition3d(t[0], (1, 2, 2)));
        yield return C("WindowReverse3d", "window_reverse3d", [F(8, 4, 3)], t => Ops.WindowReverse3d(t[0], (1, 2, 2), 1, 2, 4, 4));
    }

    Device _a = null!, _b = null!;

    [SetUp]
    public void Devices()
    {
        _a = Device.CreateCpu($"sweep a {TestContext.CurrentContext.Test.Name}");
        _b = Device.CreateCpu($"sweep b {TestContext.CurrentContext.Test.Name}");
    }

    [TearDown]
    public void NothingLeaked()
    {
        Assert.That(_a.Pool.InUseBytes, Is.EqualTo(0), "device a leaked");
        Assert.That(_b.Pool.InUseBytes, Is.EqualTo(0), "device b leaked");
    }

    /// <summary>Valid operands: Int32 ones are indices 0/1 (in range for every case), Float32 ones positive values.</summary>
    static Tensor Make(Operand o, Device device, DType? dtype = null, int seed = 1)
    {
        var shape = new Shape(o.Shape);
        int n = (int)shape.Numel;
        return (dtype ?? o.DType) == DType.Int32
            ? Tensor.FromArray(Enumerable.Range(0, n).Select(i => i % 2).ToArray(), shape, device)
            : Tensor.FromArray(Rand.Positive(seed, n), shape, device);
    }

    Tensor[] Operands(OpCase c, int slot = -1, Func<Operand, Tensor>? replace = null) =>
        c.Operands.Select((o, i) => i == slot && replace is not null ? replace(o) : Make(o, _a, seed: i + 1)).ToArray();

    [TestCaseSource(nameof(Cases))]
    public void ValidCallSucceeds(OpCase c)
    {
        using var scope = TensorScope.Begin();
        var y = c.Call(Operands(c));
        Assert.That(y.IsDisposed, Is.False);
    }

    [TestCaseSource(nameof(Cases))]
    public void WrongDTypeIsRejectedNamingTheOp(OpCase c)
    {
        int tried = 0;
        for (int slot = 0; slot < c.Operands.Length; slot++)
        {
            var o = c.Operands[slot];
            if (o.AnyDType) continue;
            var wrong = o.DType == DType.Float32 ? DType.Int32 : DType.Float32;
            using var scope = TensorScope.Begin();
            var args = Operands(c, slot, op => Make(op, _a, wrong));
            var ex = Assert.Throws(Is.InstanceOf<ArgumentException>(), () => c.Call(args),
                $"{c.Name}: operand {slot} as {wrong} instead of {o.DType}");
            Assert.That(ex!.Message, Does.Contain(c.OpName), $"{c.Name}: operand {slot} as {wrong}");
            Assert.That(ex.Message, Does.Contain(o.DType.ToString()).Or.Contain(wrong.ToString()), "the message says which dtype");
            tried++;
        }
        Assert.That(tried, Is.EqualTo(c.Operands.Count(o => !o.AnyDType)));
    }

    public static IEnumerable<OpCase> MultiOperandCases() => Cases().Where(c => c.Operands.Length >= 2);

    [TestCaseSource(nameof(MultiOperandCases))]
    public void OperandsOnTwoDevicesAreRejectedNamingTheOp(OpCase c)
    {
        for (int slot = 1; slot < c.Operands.Length; slot++)
        {
            using var scope = TensorScope.Begin();
            var args = Operands(c, slot, o => Make(o, _b, seed: 99));
            var ex = Assert.Throws(Is.InstanceOf<ArgumentException>(), () => c.Call(args), $"{c.Name}: operand {slot} on device b");
            Assert.That(ex!.Message, Does.Contain(c.OpName).And.Contain("device"), $"{c.Name}: operand {slot} on device b");
        }
    }

    [TestCaseSource(nameof(Cases))]
    public void DisposedOperandIsRejectedNamingTheOp(OpCase c)
    {
        for (int slot = 0; slot < c.Operands.Length; slot++)
        {
            using var scope = TensorScope.Begin();
            var args = Operands(c, slot, o =>
            {
                var t = Make(o, _a);
                t.Dispose();
                return t;
            });
            var ex = Assert.Throws<ObjectDisposedException>(() => c.Call(args), $"{c.Name}: operand {slot} disposed");
            Assert.That(ex!.Message, Does.Contain(c.OpName), $"{c.Name}: operand {slot} disposed");
        }
    }

    /// <summary>
    /// Out of memory at each allocation of the op's forward and backward in turn (the pool limit
    /// stepped up from what the operands hold), with no TensorScope to clean up: every failed call
    /// must free what it allocated, so the pool is back at the operands' bytes each time.
    /// </summary>
    [TestCaseSource(nameof(Cases))]
    public void OutOfMemoryAtAnyAllocationLeavesNothingBehind(OpCase c)
    {
        var pool = _a.Pool;
        var args = Operands(c);
        foreach (var (t, o) in args.Zip(c.Operands))
        {
            t.DetachFromScope();
            if (t.DType == DType.Float32 && !o.Data && c.OpName != "batch_norm") t.RequiresGrad = true;
        }
        try
        {
            long baseline = pool.InUseBytes;
            void Run()
            {
                using var tape = Tape.Begin();
                using var y = c.Call(args);
                using var s = Ops.Sum(y);
                if (s.RequiresGrad) tape.Backward(s);
                foreach (var t in args) t.ZeroGrad();
            }
            pool.EmptyCache();
            long reserved = pool.ReservedBytes;
            pool.ResetPeak();
            Run();
            long need = pool.Stats().PeakReservedBytes - reserved;
            int failures = 0;
            for (long extra = 0; extra < need; extra += MemoryPool.Granularity)
            {
                pool.EmptyCache();
                pool.LimitBytes = pool.ReservedBytes + extra;
                try { Run(); }
                catch (DeviceOutOfMemoryException) { failures++; }
                pool.LimitBytes = null;
                foreach (var t in args) t.ZeroGrad();
                Assert.That(pool.InUseBytes, Is.EqualTo(baseline), $"{c.Name}: limit {extra} B above the operands: the failed call left bytes allocated");
            }
            Assert.That(failures, Is.GreaterThan(0));
            TestContext.Out.WriteLine($"oom-sweep {c.Name}: {failures} failing limits of {(need + MemoryPool.Granularity - 1) / MemoryPool.Granularity}");
        }
        finally
        {
            _a.Pool.LimitBytes = null;
            foreach (var t in args) t.Dispose();
        }
    }

    [TestCaseSource(nameof(Cases))]
    public void InvalidCallsLeaveNoTapeNodes(OpCase c)
    {
        // A rejected op records nothing: the tape stays empty and holds no bytes.
        using var scope = TensorScope.Begin();
        using var tape = Tape.Begin();
        var args = Operands(c, 0, o =>
        {
            var t = Make(o, _a, o.DType == DType.Float32 && !o.AnyDType ? DType.Int32 : o.DType);
            return t;
        });
        foreach (var (t, o) in args.Zip(c.Operands)) if (t.DType == DType.Float32 && !o.Data) t.RequiresGrad = true;
        if (!c.Operands[0].AnyDType) Assert.Catch<ArgumentException>(() => c.Call(args));
        Assert.That(tape.Nodes, Is.Empty);
        Assert.That(tape.SavedBytes, Is.Zero);
    }
}

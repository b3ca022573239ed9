using System.Runtime.InteropServices;
using Sbp.Memory;
using Sbp.Tensors;

namespace Sbp.Backends.Cuda;

// Elementwise ops: add/mul for equal shapes, binary_f32 with broadcasting, unary, activations and their backward.
public sealed unsafe partial class CudaBackend
{
    public void Binary(BinaryOp op, Tensor a, Tensor b, Tensor c)
    {
        long n = Count(c.Numel, "Binary");
        if (n == 0) return;
        if (a.DType.Is16Bit() || b.DType.Is16Bit())
        {
            BinaryPromoted(op, a, b, c, n);
            return;
        }
        if (a.Shape == c.Shape && b.Shape == c.Shape && op is BinaryOp.Add or BinaryOp.Mul)
        {
            Launch(op == BinaryOp.Add ? PtxKernels.AddF32 : PtxKernels.MulF32, n, Ptr(a), Ptr(b), Ptr(c), U32(n));
            return;
        }
        var (dims, strides) = Geometry.Collapse(c.Shape.Dims, a.Shape.BroadcastStrides(c.Shape), b.Shape.BroadcastStrides(c.Shape));
        BinaryStrided(c.Device, op, P(a), strides[0], P(b), strides[1], P(c), dims);
    }

    /// <summary>c[i] = a[off_a(i)] op b[off_b(i)] over dims, c contiguous (binary_f32).</summary>
    void BinaryStrided(Device device, BinaryOp op, ulong a, long[] aStrides, ulong b, long[] bStrides, ulong c, int[] dims)
    {
        long n = 1;
        foreach (var d in dims) n *= d;
        if (n == 0) return;
        var meta = new int[dims.Length * 3];
        for (int i = 0; i < dims.Length; i++)
        {
            meta[i] = dims[i];
            meta[dims.Length + i] = checked((int)aStrides[i]);
            meta[2 * dims.Length + i] = checked((int)bStrides[i]);
        }
        int code = op switch
        {
            BinaryOp.Add => 0,
            BinaryOp.Sub => 1,
            BinaryOp.Mul => 2,
            BinaryOp.Div => 3,
            BinaryOp.Pow => 4,
            BinaryOp.Equal => 5,
            _ => throw new NotSupportedException($"CudaBackend.Binary: op {op} is not implemented on CUDA."),
        };
        Launch(PtxKernels.BinaryF32, n, Ptr(a), Ptr(b), Ptr(c), U32(n), U32(dims.Length), Meta("Binary", meta), U32(code));
    }

    /// <summary>
    /// A 16-bit operand (autocast's promotion; c Float32) in one pass (binary_b16): a of c's shape, b of c's shape or a block
    /// broadcast (b's element (i / div) mod len: a per-sample mask, a bias row); other forms are widened whole first.
    /// </summary>
    void BinaryPromoted(BinaryOp op, Tensor a, Tensor b, Tensor c, long n)
    {
        if (a.Shape != c.Shape && b.Shape == c.Shape && op is BinaryOp.Add or BinaryOp.Mul) (a, b) = (b, a);
        uint code = op switch { BinaryOp.Add => 0, BinaryOp.Sub => 1, BinaryOp.Mul => 2, BinaryOp.Div => 3, _ => 4 };
        var block = a.Shape == c.Shape && c.DType == DType.Float32 ? BroadcastBlock(b.Shape, c.Shape) : null;
        if (code == 4 || block is not { } bb)
        {
            SixteenBitOperands.OnFloat32(this, [a, b], c, (w, c32) => Binary(op, w[0], w[1], c32));
            return;
        }
        Launch(PtxKernels.BinaryB16, n, Ptr(a), Ptr(b), Ptr(c), U32(n), U32(bb.Div), U32(bb.Len), U32(ElementType(a.DType)), U32(ElementType(b.DType)), U32(code));
    }

    /// <summary>
    /// Where b broadcast to <paramref name="to"/> reads: element (i / Div) mod Len of the flat index i, when b's axes of size
    /// above 1 are one run of to's axes; null for another broadcast.
    /// </summary>
    static (long Div, long Len)? BroadcastBlock(Shape b, Shape to)
    {
        var (dims, strides) = Geometry.Collapse(to.Dims, b.BroadcastStrides(to));
        int walked = -1;
        for (int i = 0; i < dims.Length; i++)
        {
            if (strides[0][i] == 0 || dims[i] == 1) continue;
            if (walked >= 0) return null;
            walked = i;
        }
        if (walked < 0) return (Math.Max(to.Numel, 1), 1);
        if (strides[0][walked] != 1) return null;
        long div = 1;
        for (int i = walked + 1; i < dims.Length; i++) div *= dims[i];
        return (div, dims[walked]);
    }

    /// <summary>x [N, C, S] op p[c] into y (y may be x): the per-channel broadcast of batch norm.</summary>
    void ChannelOp(BinaryOp op, Tensor x, Tensor p, Tensor y, int n, int c, long s)
    {
        int si = checked((int)s);
        BinaryStrided(y.Device, op, P(x), [(long)c * si, si, 1], P(p), [0, 1, 0], P(y), [n, c, si]);
    }

    public void Unary(UnaryOp op, Tensor x, Tensor y, float alpha = 0f)
    {
        long n = Count(x.Numel, "Unary");
        if (n == 0) return;
        if (x.DType.Is16Bit())
        {
            // an activation of a 16-bit x (autocast): one pass, widened where read, rounded where written
            Activation16(op, x, null, y);
            return;
        }
        switch (op)
        {
            case UnaryOp.Relu: Launch(PtxKernels.ReluF32, n, Ptr(x), Ptr(y), U32(n)); return;
            case UnaryOp.Gelu: Launch(PtxKernels.GeluErfF32, n, Ptr(x), Ptr(y), U32(n)); return;
            case UnaryOp.GeluTanh: Launch(PtxKernels.GeluTanhF32, n, Ptr(x), Ptr(y), U32(n)); return;
            case UnaryOp.MulScalar: Launch(PtxKernels.ScaleF32, n, Ptr(x), Ptr(y), U32(n), F32(alpha)); return;
        }
        int code = op switch
        {
            UnaryOp.Neg => 0,
            UnaryOp.Exp => 1,
            UnaryOp.Log => 2,
            UnaryOp.Sqrt => 3,
            UnaryOp.AddScalar => 4,
            UnaryOp.RSubScalar => 6,
            UnaryOp.RDivScalar => 7,
            UnaryOp.PowScalar => 8,
            _ => throw new NotSupportedException($"CudaBackend.Unary: op {op} is not implemented on CUDA."),
        };
        Launch(PtxKernels.UnaryF32, n, Ptr(x), Ptr(y), U32(n), U32(code), F32(alpha));
    }

    public void ActivationBackward(UnaryOp op, Tensor x, Tensor dy, Tensor dx)
    {
        long n = Count(x.Numel, "ActivationBackward");
        if (n == 0) return;
        if (x.DType.Is16Bit())
        {
            Activation16Backward(op, x, null, dy, dx);
            return;
        }
        var kernel = op switch
        {
            UnaryOp.Relu => PtxKernels.ReluBwdF32,
            UnaryOp.Gelu => PtxKernels.GeluErfBwdF32,
            UnaryOp.GeluTanh => PtxKernels.GeluTanhBwdF32,
            _ => throw new ArgumentOutOfRangeException(nameof(op), op, "ActivationBackward supports Relu, Gelu and GeluTanh."),
        };
        Launch(kernel, n, Ptr(x), Ptr(dy), Ptr(dx), U32(n));
    }

    /// <summary>f(x + bias) with bias [C] over x [rows, C]; a 16-bit x in one pass (bias_act_b16), else add then f.</summary>
    public void BiasActivation(UnaryOp op, Tensor x, Tensor bias, Tensor y)
    {
        if (x.DType.Is16Bit())
        {
            Activation16(op, x, bias, y);
            return;
        }
        Binary(BinaryOp.Add, x, bias, y);
        Unary(op, y, y);
    }

    /// <summary>dx = dy f'(x + bias); a 16-bit x in one pass (bias_act_bwd_b16), else through a Float32 x + bias.</summary>
    public void BiasActivationBackward(UnaryOp op, Tensor x, Tensor bias, Tensor dy, Tensor dx)
    {
        if (x.DType.Is16Bit())
        {
            Activation16Backward(op, x, bias, dy, dx);
            return;
        }
        using var pre = Tensor.Empty(x.Shape, x.Device).DetachFromScope();
        Binary(BinaryOp.Add, x, bias, pre);
        ActivationBackward(op, pre, dy, dx);
    }

    /// <summary>y = round(f(widen(x) + bias)) for a 16-bit x and y of its type (kernels/half.ptx); bias Float32 [C] or none.</summary>
    void Activation16(UnaryOp op, Tensor x, Tensor? bias, Tensor y)
    {
        long n = Count(x.Numel, "Activation");
        if (n == 0) return;
        if (y.DType != x.DType)
            throw new ArgumentException($"CudaBackend.{op}: a 16-bit x ({x.DType} {x.Shape}) gives y of its type, got {y.DType} {y.Shape}.");
        Launch(PtxKernels.BiasActB16, n, Ptr(x), Ptr(bias), Ptr(y), U32(n), U32(bias?.Numel ?? 0), U32(TypeCode(x.DType)), U32(ActivationCode(op)));
    }

    /// <summary>dx = dy f'(widen(x) + bias) for a 16-bit x, dy and dx Float32 (kernels/half.ptx).</summary>
    void Activation16Backward(UnaryOp op, Tensor x, Tensor? bias, Tensor dy, Tensor dx)
    {
        long n = Count(x.Numel, "ActivationBackward");
        if (n == 0) return;
        Launch(PtxKernels.BiasActBwdB16, n, Ptr(x), Ptr(bias), Ptr(dy), Ptr(dx), U32(n), U32(bias?.Numel ?? 0), U32(TypeCode(x.DType)), U32(ActivationCode(op)));
    }

    /// <summary>The `type` parameter of the 16-bit kernels: 0 bfloat16, 1 float16.</summary>
    static uint TypeCode(DType type) => type switch
    {
        DType.BFloat16 => 0,
        DType.Float16 => 1,
        _ => throw new ArgumentException($"CudaBackend: {type} is not a 16-bit float type (BFloat16 or Float16)."),
    };

    /// <summary>The element-type parameters of the kernels that read Float32 or 16-bit data (x_type, z_type, a_type, ...): 0 Float32, 1 bfloat16, 2 float16.</summary>
    static uint ElementType(DType type) => type == DType.Float32 ? 0u : TypeCode(type) + 1;

    static uint ActivationCode(UnaryOp op) => op switch
    {
        UnaryOp.Relu => 0,
        UnaryOp.Gelu => 1,
        UnaryOp.GeluTanh => 2,
        _ => throw new NotSupportedException($"CudaBackend: {op} does not read 16-bit inputs; of the unary ops ReLU and GELU do (autocast)."),
    };
}

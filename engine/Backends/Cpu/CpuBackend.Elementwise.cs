using System.Runtime.Intrinsics;
using TensorPrimitives = System.Numerics.Tensors.TensorPrimitives;
using Sbp.Tensors;

namespace Sbp.Backends.Cpu;

// Elementwise ops: binary with broadcasting (row blocks of vector loops), unary, activations and their backward, bias + activation.
public sealed unsafe partial class CpuBackend
{
    public void Binary(BinaryOp op, Tensor a, Tensor b, Tensor c)
    {
        if (a.DType.Is16Bit() || b.DType.Is16Bit())
        {
            BinaryPromoted(op, a, b, c);
            return;
        }
        nint pa = a.Pointer, pb = b.Pointer, pc = c.Pointer;
        if (a.Shape == c.Shape && b.Shape == c.Shape)
        {
            CpuLoops.For(c.Numel, 1, (s, e) => BinaryRun(op, (float*)pa + s, 1, (float*)pb + s, 1, (float*)pc + s, (int)(e - s)));
            return;
        }
        var (dims, strides) = Geometry.Collapse(c.Shape.Dims,
            a.Shape.BroadcastStrides(c.Shape), b.Shape.BroadcastStrides(c.Shape), c.Shape.Strides());
        int len = dims[^1];
        int sa = (int)strides[0][^1], sb = (int)strides[1][^1];
        long ra = RowStride(strides[0]), rb = RowStride(strides[1]), rc = RowStride(strides[2]);
        bool walk = sa == 1 && sb == 1 && Vector256.IsHardwareAccelerated;
        CpuLoops.ForRows(dims, strides, (o, count) =>
        {
            float* a = (float*)pa + o[0], b = (float*)pb + o[1], c = (float*)pc + o[2];
            switch (op)
            {
                // Rows that walk both operands (a bias row repeated over [rows, C]): one vector loop per
                // row, no dispatch per row; short rows made the dispatch cost more than the adds.
                case BinaryOp.Add when walk: VectorRows<AddOp>(a, ra, b, rb, c, rc, len, count); break;
                case BinaryOp.Sub when walk: VectorRows<SubOp>(a, ra, b, rb, c, rc, len, count); break;
                case BinaryOp.Mul when walk: VectorRows<MulOp>(a, ra, b, rb, c, rc, len, count); break;
                default:
                    for (int r = 0; r < count; r++) BinaryRun(op, a + r * ra, sa, b + r * rb, sb, c + r * rc, len);
                    break;
            }
        });
    }

    /// <summary>
    /// A 16-bit operand of c's shape beside a Float32 one (autocast's promotion; c Float32): each run of it widened into a
    /// buffer in cache as the loop reaches it, then the Float32 rule; other 16-bit forms are widened whole first.
    /// </summary>
    void BinaryPromoted(BinaryOp op, Tensor a, Tensor b, Tensor c)
    {
        bool lowA = a.DType.Is16Bit();
        var (low, other) = lowA ? (a, b) : (b, a);
        if (other.DType.Is16Bit() || low.Shape != c.Shape || c.DType != DType.Float32)
        {
            SixteenBitOperands.OnFloat32(this, [a, b], c, (w, c32) => Binary(op, w[0], w[1], c32));
            return;
        }
        var (dims, strides) = Geometry.Collapse(c.Shape.Dims, other.Shape.BroadcastStrides(c.Shape), c.Shape.Strides());
        int len = dims[^1], so = (int)strides[0][^1];
        long ro = RowStride(strides[0]), rc = RowStride(strides[1]);
        nint pl = low.Pointer, po = other.Pointer, pc = c.Pointer;
        var type = low.DType;
        // n elements from c's element `at` (the 16-bit operand has c's layout) and the other operand's element `from`
        void Run(long at, long from, long n)
        {
            const int Chunk = 1024;
            float* w = stackalloc float[Chunk];
            for (long j = 0; j < n; j += Chunk)
            {
                int m = (int)Math.Min(Chunk, n - j);
                HalfPrecision.Widen(new ReadOnlySpan<ushort>((ushort*)pl + at + j, m), new Span<float>(w, m), type);
                float* x = (float*)po + from + j * so;
                if (lowA) BinaryRun(op, w, 1, x, so, (float*)pc + at + j, m);
                else BinaryRun(op, x, so, w, 1, (float*)pc + at + j, m);
            }
        }
        if (dims.Length == 1) CpuLoops.For(len, 1, (s, e) => Run(s, s * so, e - s));
        else CpuLoops.ForRows(dims, strides, (o, count) =>
        {
            for (int r = 0; r < count; r++) Run(o[1] + r * rc, o[0] + r * ro, len);
        });
    }

    interface IVectorOp
    {
        static abstract Vector256<float> Apply(Vector256<float> a, Vector256<float> b);
        static abstract float Apply(float a, float b);
    }

    readonly struct AddOp : IVectorOp
    {
        public static Vector256<float> Apply(Vector256<float> a, Vector256<float> b) => a + b;
        public static float Apply(float a, float b) => a + b;
    }

    readonly struct SubOp : IVectorOp
    {
        public static Vector256<float> Apply(Vector256<float> a, Vector256<float> b) => a - b;
        public static float Apply(float a, float b) => a - b;
    }

    readonly struct MulOp : IVectorOp
    {
        public static Vector256<float> Apply(Vector256<float> a, Vector256<float> b) => a * b;
        public static float Apply(float a, float b) => a * b;
    }

    /// <summary>c = a op b on count rows of n contiguous elements (rows ra, rb, rc apart; c may alias a or b).</summary>
    static void VectorRows<TOp>(float* a, long ra, float* b, long rb, float* c, long rc, int n, int count) where TOp : struct, IVectorOp
    {
        for (int r = 0; r < count; r++, a += ra, b += rb, c += rc)
        {
            int j = 0;
            for (; j + 8 <= n; j += 8) TOp.Apply(Vector256.Load(a + j), Vector256.Load(b + j)).Store(c + j);
            for (; j < n; j++) c[j] = TOp.Apply(a[j], b[j]);
        }
    }

    /// <summary>One contiguous run; sa and sb are 1 (walk) or 0 (broadcast one value).</summary>
    static void BinaryRun(BinaryOp op, float* a, int sa, float* b, int sb, float* c, int n)
    {
        var y = new Span<float>(c, n);
        if (sa == 0 && sb == 0)
        {
            y.Fill(Scalar(op, *a, *b));
            return;
        }
        if (op == BinaryOp.Equal)
        {
            for (int i = 0; i < n; i++) c[i] = a[i * sa] == b[i * sb] ? 1f : 0f;
            return;
        }
        var x1 = new ReadOnlySpan<float>(a, n);
        var x2 = new ReadOnlySpan<float>(b, n);
        if (sa == 1 && sb == 1)
        {
            switch (op)
            {
                case BinaryOp.Add: TensorPrimitives.Add(x1, x2, y); break;
                case BinaryOp.Sub: TensorPrimitives.Subtract(x1, x2, y); break;
                case BinaryOp.Mul: TensorPrimitives.Multiply(x1, x2, y); break;
                case BinaryOp.Div: TensorPrimitives.Divide(x1, x2, y); break;
                case BinaryOp.Pow: TensorPrimitives.Pow(x1, x2, y); break;
                default: throw new ArgumentOutOfRangeException(nameof(op), op, null);
            }
        }
        else if (sb == 0)
        {
            float s = *b;
            switch (op)
            {
                case BinaryOp.Add: TensorPrimitives.Add(x1, s, y); break;
                case BinaryOp.Sub: TensorPrimitives.Subtract(x1, s, y); break;
                case BinaryOp.Mul: TensorPrimitives.Multiply(x1, s, y); break;
                case BinaryOp.Div: TensorPrimitives.Divide(x1, s, y); break;
                case BinaryOp.Pow: TensorPrimitives.Pow(x1, s, y); break;
                default: throw new ArgumentOutOfRangeException(nameof(op), op, null);
            }
        }
        else
        {
            float s = *a;
            switch (op)
            {
                case BinaryOp.Add: TensorPrimitives.Add(x2, s, y); break;
                case BinaryOp.Sub: TensorPrimitives.Subtract(s, x2, y); break;
                case BinaryOp.Mul: TensorPrimitives.Multiply(x2, s, y); break;
                case BinaryOp.Div: TensorPrimitives.Divide(s, x2, y); break;
                case BinaryOp.Pow: TensorPrimitives.Pow(s, x2, y); break;
                default: throw new ArgumentOutOfRangeException(nameof(op), op, null);
            }
        }
    }

    static float Scalar(BinaryOp op, float a, float b) => op switch
    {
        BinaryOp.Add => a + b,
        BinaryOp.Sub => a - b,
        BinaryOp.Mul => a * b,
        BinaryOp.Div => a / b,
        BinaryOp.Pow => MathF.Pow(a, b),
        BinaryOp.Equal => a == b ? 1f : 0f,
        _ => throw new ArgumentOutOfRangeException(nameof(op), op, null),
    };

    public void Unary(UnaryOp op, Tensor x, Tensor y, float alpha = 0f)
    {
        if (x.DType.Is16Bit())
        {
            Activation16(op, x, y);
            return;
        }
        nint px = x.Pointer, py = y.Pointer;
        long work = op is UnaryOp.Gelu or UnaryOp.GeluTanh or UnaryOp.Exp or UnaryOp.Log or UnaryOp.PowScalar ? 8 : 1;
        CpuLoops.For(x.Numel, work, (s, e) =>
        {
            int n = (int)(e - s);
            var a = new ReadOnlySpan<float>((float*)px + s, n);
            var b = new Span<float>((float*)py + s, n);
            switch (op)
            {
                case UnaryOp.Neg: TensorPrimitives.Negate(a, b); break;
                case UnaryOp.Exp: CpuMath.Exp((float*)px + s, (float*)py + s, n); break;
                case UnaryOp.Log: TensorPrimitives.Log(a, b); break;
                case UnaryOp.Sqrt: TensorPrimitives.Sqrt(a, b); break;
                case UnaryOp.Relu or UnaryOp.Gelu or UnaryOp.GeluTanh: ActivationRun(op, (float*)px + s, (float*)py + s, n); break;
                case UnaryOp.AddScalar: TensorPrimitives.Add(a, alpha, b); break;
                case UnaryOp.MulScalar: TensorPrimitives.Multiply(a, alpha, b); break;
                case UnaryOp.RSubScalar: TensorPrimitives.Subtract(alpha, a, b); break;
                case UnaryOp.RDivScalar: TensorPrimitives.Divide(alpha, a, b); break;
                case UnaryOp.PowScalar: TensorPrimitives.Pow(a, alpha, b); break;
                default: throw new ArgumentOutOfRangeException(nameof(op), op, null);
            }
        });
    }

    /// <summary>Row by row: x + bias, then f in place; a 16-bit x is widened into a row buffer and the row rounded into y.</summary>
    public void BiasActivation(UnaryOp op, Tensor x, Tensor bias, Tensor y)
    {
        int c = bias.Shape[0];
        if (x.Numel == 0) return;
        nint px = x.Pointer, pb = bias.Pointer, py = y.Pointer;
        var type = x.DType;
        CpuLoops.For(x.Numel / c, 8L * c, (s, e) =>
        {
            if (type.Is16Bit())
            {
                var row = new float[c];
                fixed (float* buffer = row)
                    for (long r = s; r < e; r++)
                    {
                        HalfPrecision.Widen(new ReadOnlySpan<ushort>((ushort*)px + r * c, c), row, type);
                        AddRow(buffer, (float*)pb, buffer, c);
                        ActivationRun(op, buffer, buffer, c);
                        HalfPrecision.Narrow(row, new Span<ushort>((ushort*)py + r * c, c), type);
                    }
                return;
            }
            for (long r = s; r < e; r++)
            {
                float* yr = (float*)py + r * c;
                AddRow((float*)px + r * c, (float*)pb, yr, c);
                ActivationRun(op, yr, yr, c);
            }
        });
    }

    /// <summary>Row by row: x + bias into dx's row (a 16-bit x widened there), then dx = dy * f'(dx) in place.</summary>
    public void BiasActivationBackward(UnaryOp op, Tensor x, Tensor bias, Tensor dy, Tensor dx)
    {
        int c = bias.Shape[0];
        if (x.Numel == 0) return;
        nint px = x.Pointer, pb = bias.Pointer, pg = dy.Pointer, pd = dx.Pointer;
        var type = x.DType;
        CpuLoops.For(x.Numel / c, 8L * c, (s, e) =>
        {
            for (long r = s; r < e; r++)
            {
                float* d = (float*)pd + r * c;
                if (type.Is16Bit())
                {
                    HalfPrecision.Widen(new ReadOnlySpan<ushort>((ushort*)px + r * c, c), new Span<float>(d, c), type);
                    AddRow(d, (float*)pb, d, c);
                }
                else AddRow((float*)px + r * c, (float*)pb, d, c);
                ActivationBackwardRun(op, d, (float*)pg + r * c, d, c);
            }
        });
    }

    static void AddRow(float* a, float* b, float* c, int n)
    {
        if (Vector256.IsHardwareAccelerated) VectorRows<AddOp>(a, 0, b, 0, c, 0, n, 1);
        else TensorPrimitives.Add(new ReadOnlySpan<float>(a, n), new ReadOnlySpan<float>(b, n), new Span<float>(c, n));
    }

    /// <summary>dx = dy * f'(x); a 16-bit x (autocast) is widened into dx first, run by run.</summary>
    public void ActivationBackward(UnaryOp op, Tensor x, Tensor dy, Tensor dx)
    {
        nint px = x.Pointer, pg = dy.Pointer, pd = dx.Pointer;
        var type = x.DType;
        CpuLoops.For(x.Numel, 8, (s, e) =>
        {
            float* from = (float*)px + s;
            if (type.Is16Bit())
            {
                HalfPrecision.Widen(new ReadOnlySpan<ushort>((ushort*)px + s, (int)(e - s)), new Span<float>((float*)pd + s, (int)(e - s)), type);
                from = (float*)pd + s;
            }
            ActivationBackwardRun(op, from, (float*)pg + s, (float*)pd + s, (int)(e - s));
        });
    }

    /// <summary>An activation of a 16-bit x into y of its type (autocast): widened in chunks, f as for Float32, rounded back.</summary>
    static void Activation16(UnaryOp op, Tensor x, Tensor y)
    {
        if (op is not (UnaryOp.Relu or UnaryOp.Gelu or UnaryOp.GeluTanh))
            throw new ArgumentException($"Unary: {op} takes Float32; of the unary ops ReLU and GELU read 16-bit {x.DType} (autocast).");
        nint px = x.Pointer, py = y.Pointer;
        var type = x.DType;
        CpuLoops.For(x.Numel, op == UnaryOp.Relu ? 1 : 8, (s, e) =>
        {
            Span<float> chunk = stackalloc float[512];
            fixed (float* buffer = chunk)
                for (long i = s; i < e; i += chunk.Length)
                {
                    int n = (int)Math.Min(chunk.Length, e - i);
                    HalfPrecision.Widen(new ReadOnlySpan<ushort>((ushort*)px + i, n), chunk[..n], type);
                    ActivationRun(op, buffer, buffer, n);
                    HalfPrecision.Narrow(chunk[..n], new Span<ushort>((ushort*)py + i, n), type);
                }
        });
    }

    /// <summary>y = f(x) on one run for the activations with a fused backward (y may alias x); Unary and BiasActivation run it.</summary>
    static void ActivationRun(UnaryOp op, float* x, float* y, int n)
    {
        switch (op)
        {
            case UnaryOp.Relu: TensorPrimitives.Max(new ReadOnlySpan<float>(x, n), 0f, new Span<float>(y, n)); break;
            case UnaryOp.Gelu: CpuMath.Gelu(x, y, n, tanhForm: false); break;
            case UnaryOp.GeluTanh: CpuMath.Gelu(x, y, n, tanhForm: true); break;
            default: throw new ArgumentOutOfRangeException(nameof(op), op, "BiasActivation supports Relu, Gelu and GeluTanh.");
        }
    }

    /// <summary>dx = x &gt; 0 ? dy : 0 (NaN and -0 give 0), 8 lanes at a time: the scalar rule's bits.</summary>
    static void ReluBackward(float* x, float* dy, float* dx, int n)
    {
        int i = 0;
        if (Vector256.IsHardwareAccelerated)
            for (; i + 8 <= n; i += 8)
                Vector256.ConditionalSelect(Vector256.GreaterThan(Vector256.Load(x + i), Vector256<float>.Zero), Vector256.Load(dy + i), Vector256<float>.Zero).Store(dx + i);
        for (; i < n; i++) dx[i] = x[i] > 0f ? dy[i] : 0f;
    }

    /// <summary>dx = dy * f'(x) on one run (dx may alias x or dy); ActivationBackward and BiasActivationBackward run it.</summary>
    static void ActivationBackwardRun(UnaryOp op, float* x, float* dy, float* dx, int n)
    {
        switch (op)
        {
            case UnaryOp.Relu: ReluBackward(x, dy, dx, n); break;
            case UnaryOp.Gelu: CpuMath.GeluBackward(x, dy, dx, n, tanhForm: false); break;
            case UnaryOp.GeluTanh: CpuMath.GeluBackward(x, dy, dx, n, tanhForm: true); break;
            default: throw new ArgumentOutOfRangeException(nameof(op), op, "ActivationBackward supports Relu, Gelu and GeluTanh.");
        }
    }
}

using Sbp.Tensors;

namespace Sbp.Backends;

/// <summary>Elementwise ops of two operands with NumPy broadcasting.</summary>
public enum BinaryOp
{
    Add,
    Sub,
    Mul,
    Div,
    Pow,
    /// <summary>1 where equal, else 0 (not differentiable).</summary>
    Equal,
}

/// <summary>Elementwise ops of one operand; <c>alpha</c> is the scalar of the scalar forms.</summary>
public enum UnaryOp
{
    Neg,
    Exp,
    Log,
    Sqrt,
    Relu,
    /// <summary>x * Phi(x) with the exact normal CDF (erf form).</summary>
    Gelu,
    /// <summary>The tanh approximation of GELU.</summary>
    GeluTanh,
    /// <summary>x + alpha.</summary>
    AddScalar,
    /// <summary>x * alpha.</summary>
    MulScalar,
    /// <summary>alpha - x.</summary>
    RSubScalar,
    /// <summary>alpha / x.</summary>
    RDivScalar,
    /// <summary>x ^ alpha.</summary>
    PowScalar,
}

/// <summary>
/// A strided batch of row-major GEMMs: C[b] = alpha * op(A[b]) * op(B[b]) + beta * C[b], with
/// op(A) of shape [M, K], op(B) [K, N], C [M, N]; every matrix is contiguous, so leading dimensions
/// follow from the shape (A is [K, M] in memory when TransA). A stride of 0 reuses one matrix for
/// every batch entry. Offsets are in elements.
/// </summary>
public readonly record struct GemmSpec(
    bool TransA, bool TransB, int M, int N, int K,
    int Batch = 1, long StrideA = 0, long StrideB = 0, long StrideC = 0,
    float Alpha = 1f, float Beta = 0f,
    long OffsetA = 0, long OffsetB = 0, long OffsetC = 0)
{
    /// <summary>
    /// A and B of one type (Float32 or 16-bit), or one 16-bit and the other Float32 (read rounded to that type); C Float32 or
    /// the operands' 16-bit type: the combinations cuBLAS GemmEx runs with Float32 compute (a Float32 operand cast first).
    /// </summary>
    internal static void CheckTypes(Tensor a, Tensor b, Tensor c)
    {
        var low = a.DType.Is16Bit() ? a.DType : b.DType;
        bool operands = a.DType.IsFloating() && b.DType.IsFloating() && (a.DType == b.DType || !a.DType.Is16Bit() || !b.DType.Is16Bit());
        if (!operands || (c.DType != DType.Float32 && c.DType != low))
            throw new ArgumentException($"gemm: A {a.DType} {a.Shape}, B {b.DType} {b.Shape} and C {c.DType} {c.Shape}: A and B must have one floating type " +
                "(or one 16-bit type and Float32, read rounded to it), and C be Float32 or that type; cast the odd one with Ops.To.");
    }
}

/// <summary>
/// The kernels a device provides. Ops (forward and backward) are written once on top of these;
/// the CPU backend is the reference every other backend is checked against. Callers allocate
/// outputs and validate shapes; backends may assume contiguous, correctly shaped tensors on their
/// own device.
/// </summary>
public partial interface IBackend
{
    string Name { get; }

    /// <summary>
    /// Whether <see cref="Gemm"/> rounds a Float32 operand beside a 16-bit one while it reads it (the CPU, in packing), so
    /// autocast hands it parameters in Float32 instead of casting them first: no cast pass and no 16-bit copy. Backends
    /// that cast such an operand into a temporary (cuBLAS needs both in 16 bits) say false: autocast's cast, made once per
    /// step, serves their every use.
    /// </summary>
    bool RoundsGemmOperands => false;

    void CopyFromHost(ReadOnlySpan<byte> source, Tensor destination);
    void CopyToHost(Tensor source, Span<byte> destination);
    void Fill(Tensor tensor, float value);

    /// <summary>dst = src, where src's shape broadcasts to dst's (equal shapes: a plain copy).</summary>
    void Copy(Tensor source, Tensor destination);

    /// <summary>
    /// dst = src converted between Float32, BFloat16 and Float16 (same element count, different types), with
    /// <see cref="HalfPrecision"/>'s rounding: to nearest even, NaN kept.
    /// </summary>
    void Cast(Tensor source, Tensor destination);
}

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
    long OffsetA = 0, long OffsetB = 0, long OffsetC = 0);

/// <summary>
/// The kernels a device provides. Ops (forward and backward) are written once on top of these;
/// the CPU backend is the reference every other backend is checked against. Callers allocate
/// outputs and validate shapes; backends may assume contiguous, correctly shaped tensors on their
/// own device.
/// </summary>
public partial interface IBackend
{
    string Name { get; }

    void CopyFromHost(ReadOnlySpan<byte> source, Tensor destination);
    void CopyToHost(Tensor source, Span<byte> destination);
    void Fill(Tensor tensor, float value);

    /// <summary>dst = src, where src's shape broadcasts to dst's (equal shapes: a plain copy).</summary>
    void Copy(Tensor source, Tensor destination);

    /// <summary>c = a op b with a and b broadcast to c's shape. c may alias a or b when shapes equal.</summary>
    void Binary(BinaryOp op, Tensor a, Tensor b, Tensor c);

    void Unary(UnaryOp op, Tensor x, Tensor y, float alpha = 0f);

    /// <summary>dx = dy * f'(x) for Relu, Gelu and GeluTanh.</summary>
    void ActivationBackward(UnaryOp op, Tensor x, Tensor dy, Tensor dx);

    /// <summary>
    /// y = f(x + bias) for x [rows, C] and bias [C] (Relu, Gelu, GeluTanh): a linear layer's bias and its
    /// activation in one pass. The default adds, then activates in place.
    /// </summary>
    void BiasActivation(UnaryOp op, Tensor x, Tensor bias, Tensor y)
    {
        Binary(BinaryOp.Add, x, bias, y);
        Unary(op, y, y);
    }

    /// <summary>dx = dy * f'(x + bias), x, dy and dx [rows, C], bias [C]. The default adds into dx first.</summary>
    void BiasActivationBackward(UnaryOp op, Tensor x, Tensor bias, Tensor dy, Tensor dx)
    {
        using var pre = Tensor.Empty(x.Shape, x.Device).DetachFromScope();
        Binary(BinaryOp.Add, x, bias, pre);
        ActivationBackward(op, pre, dy, dx);
    }

    void Gemm(in GemmSpec spec, Tensor a, Tensor b, Tensor c);

    /// <summary>dst = sum of src over the axes where dst has size 1 and src does not (same rank).</summary>
    void ReduceSum(Tensor source, Tensor destination);

    /// <summary>dst = max of src over the axes where dst has size 1 and src does not (same rank).</summary>
    void ReduceMax(Tensor source, Tensor destination);

    /// <summary>dst = src with its axes reordered: dst axis i is src axis perm[i].</summary>
    void Permute(Tensor source, int[] permutation, Tensor destination);

    /// <summary>
    /// Copies (or, with accumulate, adds) src[..., srcStart : srcStart + count, ...] into
    /// dst[..., dstStart : dstStart + count, ...] along axis dim; other axes equal.
    /// </summary>
    void CopyAlongDim(Tensor source, int sourceStart, Tensor destination, int destinationStart, int dim, int count, bool accumulate);

    /// <summary>Gather: dst[..., i, ...] = src[..., indices[i], ...] along dim (the SBP pack).</summary>
    void IndexSelect(Tensor source, int dim, Tensor indices, Tensor destination);

    /// <summary>
    /// <see cref="IndexSelect(Tensor, int, Tensor, Tensor)"/> into a destination that is read again
    /// only much later (SBP's compact copies of saved activations): a backend may write it past
    /// its caches (the CPU's streaming stores). Same result.
    /// </summary>
    void IndexSelectForLater(Tensor source, int dim, Tensor indices, Tensor destination) => IndexSelect(source, dim, indices, destination);

    /// <summary>Scatter-add: dst[..., indices[i], ...] += src[..., i, ...] along dim; repeated indices add up.</summary>
    void IndexAdd(Tensor destination, int dim, Tensor indices, Tensor source);

    /// <summary>y = softmax(x) (or log-softmax) along dim.</summary>
    void Softmax(Tensor x, Tensor y, int dim, bool log);

    /// <summary>dx from y = softmax(x) (or log-softmax) and dy, along dim.</summary>
    void SoftmaxBackward(Tensor y, Tensor dy, Tensor dx, int dim, bool log);
}

using Sbp.Memory;
using Sbp.Tensors;

namespace Sbp.Backends.Cuda;

// Convolutions through cuDNN (algorithm chosen once per shape and direction, workspace from the pool).
public sealed partial class CudaBackend
{
    readonly Dictionary<(ConvDirection, string), ConvAlgorithm> _algorithms = new();

    /// <summary>Number of cached cuDNN algorithm choices (one per shape and direction).</summary>
    public int CachedConvolutionAlgorithms { get { lock (_gate) return _algorithms.Count; } }

    long _convWorkspaceLimit = 1L << 30;

    /// <summary>
    /// The most workspace a convolution algorithm may take (default 1 GiB): a faster one that needs more is passed over for the
    /// next the heuristics rank, as PyTorch's cuDNN search does within free memory. Changing it forgets the choices made.
    /// </summary>
    public long ConvWorkspaceLimitBytes
    {
        get => _convWorkspaceLimit;
        set
        {
            if (value < 0) throw new ArgumentOutOfRangeException(nameof(value), value, "CudaBackend.ConvWorkspaceLimitBytes must be >= 0.");
            lock (_gate)
            {
                _convWorkspaceLimit = value;
                _algorithms.Clear();
            }
        }
    }

    ConvAlgorithm Algorithm(ConvDirection direction, ConvDescriptor d)
    {
        var key = (direction, d.Key);
        lock (_gate)
            if (_algorithms.TryGetValue(key, out var a)) return a;
        var found = Choose(Api.ConvolutionCandidates(direction, d), _convWorkspaceLimit, direction, d);
        lock (_gate) _algorithms[key] = found;
        return found;
    }

    /// <summary>
    /// The first usable deterministic candidate within the workspace limit (reproducible runs; backward-filter ALGO_0
    /// accumulates with atomics), else the first usable one within it; none: an error naming the limit and what the
    /// usable ones need.
    /// </summary>
    internal static ConvAlgorithm Choose(IReadOnlyList<ConvCandidate> candidates, long limit, ConvDirection direction, ConvDescriptor d)
    {
        var fits = candidates.Where(c => c.Usable && c.WorkspaceBytes <= limit).ToList();
        var pick = fits.FirstOrDefault(c => c.Deterministic, fits.FirstOrDefault(c => true, new ConvCandidate(-1, false, false, 0)));
        if (pick.Algo >= 0) return new ConvAlgorithm(pick.Algo, pick.WorkspaceBytes);
        var usable = candidates.Where(c => c.Usable).ToList();
        throw new CudaException("cuDNN", "cudnnGetConvolution*Algorithm_v7", (int)Interop.CudnnStatus.NotSupported, "CUDNN_STATUS_NOT_SUPPORTED",
            usable.Count == 0
                ? $"no usable {direction} algorithm among {candidates.Count} candidates for {d.Key}"
                : $"no usable {direction} algorithm for {d.Key} within the workspace limit of {Memory.MemoryPool.FormatBytes(limit)} " +
                  $"(the smallest usable one needs {Memory.MemoryPool.FormatBytes(usable.Min(c => c.WorkspaceBytes))}); raise CudaBackend.ConvWorkspaceLimitBytes",
            Memory.OpLabel.Current);
    }

    void Convolve(ConvDirection direction, in ConvSpec spec, Device device, Action<ConvDescriptor, ConvAlgorithm, ulong> run, DType data = DType.Float32)
    {
        var d = ConvDescriptor.From(spec, AllowTf32, data);
        if (d.X.Any(v => v == 0) || d.Y.Any(v => v == 0) || d.W.Any(v => v == 0)) return;
        var algo = Algorithm(direction, d);
        using var workspace = algo.WorkspaceBytes > 0
            ? Tensor.Empty(new Shape(checked((int)((algo.WorkspaceBytes + 3) / 4))), device, DType.Float32, MemoryCategory.Workspace).DetachFromScope()
            : null;
        run(d, algo, workspace is null ? 0 : P(workspace));
    }

    /// <summary>
    /// x, w and y of one 16-bit type (autocast, no bias) run cuDNN's 16-bit convolution with Float32 compute on the tensors
    /// themselves; other mixes of 16-bit operands go through Float32 temporaries (widened, y rounded once).
    /// </summary>
    public void ConvForward(in ConvSpec spec, Tensor x, Tensor weight, Tensor y)
    {
        if (x.DType.Is16Bit() && weight.DType == x.DType && y.DType == x.DType && x.Numel > 0 && weight.Numel > 0
            && Runs16Bit(ConvDirection.Forward, spec, x.DType))
        {
            Convolve(ConvDirection.Forward, spec, y.Device, (d, a, ws) => Api.ConvolutionForward(d, a, P(x), P(weight), P(y), ws), x.DType);
            return;
        }
        if (SixteenBitOperands.Any(x, weight, y))
        {
            var s = spec;
            SixteenBitOperands.OnFloat32(this, [x, weight], y, (w, y32) => ConvForward(s, w[0], w[1], y32));
            return;
        }
        if (x.Numel == 0 || weight.Numel == 0) { if (y.Numel > 0) Fill(y, 0f); return; }
        Convolve(ConvDirection.Forward, spec, y.Device, (d, a, ws) => Api.ConvolutionForward(d, a, P(x), P(weight), P(y), ws));
    }

    readonly HashSet<(ConvDirection, string)> _no16BitConvolution = new();

    /// <summary>
    /// Whether cuDNN has a usable algorithm for this convolution pass on 16-bit data (chosen and cached as for Float32);
    /// where it has none (a cuDNN or GPU without the configuration), the shape is remembered and the widened Float32 path
    /// runs.
    /// </summary>
    bool Runs16Bit(ConvDirection direction, in ConvSpec spec, DType type)
    {
        var d = ConvDescriptor.From(spec, AllowTf32, type);
        lock (_gate)
            if (_no16BitConvolution.Contains((direction, d.Key))) return false;
        try
        {
            Algorithm(direction, d);
            return true;
        }
        catch (CudaException e) when (e.Code == (int)Interop.CudnnStatus.NotSupported)
        {
            lock (_gate) _no16BitConvolution.Add((direction, d.Key));
            return false;
        }
    }

    /// <summary>
    /// A 16-bit dy and weight of one type run cuDNN's 16-bit backward-data pass, whose 16-bit dx is widened into the Float32
    /// one; other 16-bit operands are widened, and dx is rounded to a 16-bit dy's type (the same bits).
    /// </summary>
    public void ConvBackwardData(in ConvSpec spec, Tensor dy, Tensor weight, Tensor dx) =>
        ConvBackward(ConvDirection.BackwardData, spec, weight, dy, dx, Api.ConvolutionBackwardData);

    /// <summary>As <see cref="ConvBackwardData"/> for the filter gradient: a 16-bit x and dy of one type run cuDNN's 16-bit pass.</summary>
    public void ConvBackwardFilter(in ConvSpec spec, Tensor x, Tensor dy, Tensor dweight) =>
        ConvBackward(ConvDirection.BackwardFilter, spec, x, dy, dweight, Api.ConvolutionBackwardFilter);

    /// <summary>
    /// One backward pass, pass(descriptor, algorithm, operand, dy, output, workspace): on the 16-bit tensors where both are of
    /// dy's 16-bit type and cuDNN has an algorithm for it (the 16-bit result widened into the Float32 output), else on
    /// Float32 widenings with the output rounded to a 16-bit dy's type.
    /// </summary>
    void ConvBackward(ConvDirection direction, in ConvSpec spec, Tensor operand, Tensor dy, Tensor output,
        Action<ConvDescriptor, ConvAlgorithm, ulong, ulong, ulong, ulong> pass)
    {
        if (operand.Numel == 0 || dy.Numel == 0) { if (output.Numel > 0) Fill(output, 0f); return; }
        var type = dy.DType;
        if (type.Is16Bit() && operand.DType == type && Runs16Bit(direction, spec, type))
        {
            using var narrow = Tensor.Empty(output.Shape, output.Device, type).DetachFromScope();
            ulong o16 = P(operand), g16 = P(dy), r16 = P(narrow);
            Convolve(direction, spec, output.Device, (d, a, ws) => pass(d, a, o16, g16, r16, ws), type);
            Cast(narrow, output);
            return;
        }
        using var operand32 = SixteenBitOperands.Widened(this, operand);
        using var dy32 = SixteenBitOperands.Widened(this, dy);
        ulong o = P(operand32 ?? operand), g = P(dy32 ?? dy), r = P(output);
        Convolve(direction, spec, output.Device, (d, a, ws) => pass(d, a, o, g, r, ws));
        SixteenBitOperands.RoundInPlace(this, type, output);
    }

}

using Sbp.Memory;
using Sbp.Tensors;

namespace Sbp.Backends.Cuda;

// Convolutions through cuDNN (algorithm chosen once per shape and direction, workspace from the
// pool); pooling through cuDNN for averages and kernels/pool.ptx for max (cuDNN returns no indices).
public sealed partial class CudaBackend
{
    readonly Dictionary<(ConvDirection, string), ConvAlgorithm> _algorithms = new();

    /// <summary>Number of cached cuDNN algorithm choices (one per shape and direction).</summary>
    public int CachedConvolutionAlgorithms { get { lock (_gate) return _algorithms.Count; } }

    ConvAlgorithm Algorithm(ConvDirection direction, ConvDescriptor d)
    {
        var key = (direction, d.Key);
        lock (_gate)
            if (_algorithms.TryGetValue(key, out var a)) return a;
        var found = Api.FindConvolution(direction, d);
        lock (_gate) _algorithms[key] = found;
        return found;
    }

    void Convolve(ConvDirection direction, in ConvSpec spec, Device device, Action<ConvDescriptor, ConvAlgorithm, ulong> run)
    {
        var d = ConvDescriptor.From(spec, AllowTf32);
        if (d.X.Any(v => v == 0) || d.Y.Any(v => v == 0) || d.W.Any(v => v == 0)) return;
        var algo = Algorithm(direction, d);
        using var workspace = algo.WorkspaceBytes > 0
            ? Tensor.Empty(new Shape(checked((int)((algo.WorkspaceBytes + 3) / 4))), device, DType.Float32, MemoryCategory.Workspace).DetachFromScope()
            : null;
        run(d, algo, workspace is null ? 0 : P(workspace));
    }

    public void ConvForward(in ConvSpec spec, Tensor x, Tensor weight, Tensor y)
    {
        if (x.Numel == 0 || weight.Numel == 0) { if (y.Numel > 0) Fill(y, 0f); return; }
        Convolve(ConvDirection.Forward, spec, y.Device, (d, a, ws) => Api.ConvolutionForward(d, a, P(x), P(weight), P(y), ws));
    }

    public void ConvBackwardData(in ConvSpec spec, Tensor dy, Tensor weight, Tensor dx)
    {
        if (dy.Numel == 0 || weight.Numel == 0) { if (dx.Numel > 0) Fill(dx, 0f); return; }
        Convolve(ConvDirection.BackwardData, spec, dx.Device, (d, a, ws) => Api.ConvolutionBackwardData(d, a, P(weight), P(dy), P(dx), ws));
    }

    public void ConvBackwardFilter(in ConvSpec spec, Tensor x, Tensor dy, Tensor dweight)
    {
        if (x.Numel == 0 || dy.Numel == 0) { if (dweight.Numel > 0) Fill(dweight, 0f); return; }
        Convolve(ConvDirection.BackwardFilter, spec, dweight.Device, (d, a, ws) => Api.ConvolutionBackwardFilter(d, a, P(x), P(dy), P(dweight), ws));
    }

    public void PoolForward(in PoolSpec spec, Tensor x, Tensor y, Tensor? indices)
    {
        if (y.Numel == 0) return;
        if (spec.Mode == PoolMode.Average)
        {
            Api.PoolingForward(PoolDescriptor.From(spec), P(x), P(y));
            return;
        }
        var (i, o, k, s, p) = (spec.Input, spec.Output, spec.Kernel, spec.Stride, spec.Padding);
        Count(y.Numel, "PoolForward");
        Launch("max_pool3d_f32", y.Numel, Ptr(x), Ptr(y), Ptr(indices), U32((long)spec.Batch * spec.Channels),
            U32(i.T), U32(i.H), U32(i.W), U32(o.T), U32(o.H), U32(o.W), U32(k.T), U32(k.H), U32(k.W),
            U32(s.T), U32(s.H), U32(s.W), U32(p.T), U32(p.H), U32(p.W));
    }

    public void PoolBackward(in PoolSpec spec, Tensor dy, Tensor? indices, Tensor dx)
    {
        if (dx.Numel == 0) return;
        if (spec.Mode == PoolMode.Average)
        {
            // cuDNN reads x and y only for max modes; dx and dy stand in for them (same shapes).
            Api.PoolingBackward(PoolDescriptor.From(spec), P(dy), P(dy), P(dx), P(dx));
            return;
        }
        if (indices is null) throw new ArgumentNullException(nameof(indices), "PoolBackward: max pooling needs the indices saved by PoolForward.");
        Fill(dx, 0f);
        long n = Count(dy.Numel, "PoolBackward");
        if (n == 0) return;
        Launch("max_pool3d_bwd_f32", n, Ptr(dy), Ptr(indices), Ptr(dx), U32(n), U32(spec.Input.Volume), U32(spec.Output.Volume));
    }
}

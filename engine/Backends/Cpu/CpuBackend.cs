using Sbp.Tensors;

namespace Sbp.Backends.Cpu;

/// <summary>
/// The reference backend: managed code over native host memory, vectorized with
/// TensorPrimitives and parallel over large tensors. Every other backend is checked against it.
/// This file: copies; the others sit in CpuBackend.*.cs by concern, named as IBackend.*.cs groups its members.
/// </summary>
public sealed unsafe partial class CpuBackend : IBackend
{
    public static CpuBackend Instance { get; } = new();
    CpuBackend() { }

    public string Name => "cpu";

    static Span<float> Span(Tensor t, long offset, int length) => new(t.F + offset, length);
    static Span<float> All(Tensor t) => new(t.F, checked((int)t.Numel));

    public void CopyFromHost(ReadOnlySpan<byte> source, Tensor destination) =>
        source.CopyTo(new Span<byte>((void*)destination.Pointer, checked((int)destination.Bytes)));

    public void CopyToHost(Tensor source, Span<byte> destination) =>
        new ReadOnlySpan<byte>((void*)source.Pointer, checked((int)source.Bytes)).CopyTo(destination);

    public void Fill(Tensor tensor, float value)
    {
        nint p = tensor.Pointer;
        CpuLoops.For(tensor.Numel, 1, (s, e) => new Span<float>((float*)p + s, (int)(e - s)).Fill(value));
    }

    public void Copy(Tensor source, Tensor destination)
    {
        if (source.Shape == destination.Shape)
        {
            nint s = source.Pointer, d = destination.Pointer;
            CpuLoops.For(source.Numel, 1, (a, b) =>
                new ReadOnlySpan<float>((float*)s + a, (int)(b - a)).CopyTo(new Span<float>((float*)d + a, (int)(b - a))));
            return;
        }
        var (dims, strides) = Geometry.Collapse(destination.Shape.Dims,
            source.Shape.BroadcastStrides(destination.Shape), destination.Shape.Strides());
        nint src = source.Pointer, dst = destination.Pointer;
        int len = dims[^1];
        long ss = strides[0][^1];
        long rs = RowStride(strides[0]), rd = RowStride(strides[1]);
        CpuLoops.ForRows(dims, strides, (o, count) =>
        {
            float* x = (float*)src + o[0];
            float* d = (float*)dst + o[1];
            for (int r = 0; r < count; r++, x += rs, d += rd)
            {
                var y = new Span<float>(d, len);
                if (ss == 0) y.Fill(*x);
                else new ReadOnlySpan<float>(x, len).CopyTo(y);
            }
        });
    }
}

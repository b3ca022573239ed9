using Sbp.Tensors;

namespace Sbp.Backends.Cuda;

// Softmax and log-softmax along an axis (row kernels; other axes moved last).
public sealed partial class CudaBackend
{
    public void Softmax(Tensor x, Tensor y, int dim, bool log) =>
        AlongLastAxis(x.Shape, dim, [x], [y], (ins, outs, rows, cols) =>
            LaunchRows(log ? PtxKernels.LogSoftmaxF32 : PtxKernels.SoftmaxF32, rows, cols, 0, Ptr(ins[0]), Ptr(outs[0]), U32(rows), U32(cols)));

    public void SoftmaxBackward(Tensor y, Tensor dy, Tensor dx, int dim, bool log) =>
        AlongLastAxis(y.Shape, dim, [y, dy], [dx], (ins, outs, rows, cols) =>
            LaunchRows(log ? PtxKernels.LogSoftmaxBwdF32 : PtxKernels.SoftmaxBwdF32, rows, cols, 0, Ptr(ins[0]), Ptr(ins[1]), Ptr(outs[0]), U32(rows), U32(cols)));

    /// <summary>
    /// Attention's bias, mask, softmax and 16-bit copy of P in one row kernel (attention_softmax_f32: each input read once, the
    /// row kept in shared memory) where the bias and mask are whole rows of the scores' last two axes and a row fits; other
    /// broadcasts take the step-by-step default.
    /// </summary>
    public void AttentionSoftmax(in AttentionSpec s, Tensor logits, Tensor? bias, Tensor? mask, Tensor probs, Tensor? probs16)
    {
        var biasRows = bias is null ? (Inner: 0, Div: 1, Groups: 1) : RowsOf(bias.Shape, s, window: false);
        var maskRows = mask is null ? (Inner: 0, Div: 1, Groups: 1) : RowsOf(mask.Shape, s, s.WindowMask);
        if (biasRows.Inner < 0 || biasRows.Groups != 1 || maskRows.Inner < 0 || logits.DType != DType.Float32 || probs.DType != DType.Float32 ||
            s.M > MaxSharedRow)
        {
            AttentionSteps.Softmax(this, s, logits, bias, mask, probs, probs16);
            return;
        }
        long rows = (long)s.Entries * s.N;
        if (rows == 0 || s.M == 0) return;
        LaunchRows(PtxKernels.AttentionSoftmaxF32, Count(rows, "AttentionSoftmax"), s.M, (uint)(4 * s.M), Ptr(logits), Ptr(bias), Ptr(mask), Ptr(probs), Ptr(probs16),
            U32(rows), U32(s.M), U32(Math.Max(biasRows.Inner, 1)), U32(maskRows.Div), U32(maskRows.Groups), U32(Math.Max(maskRows.Inner, 1)),
            U32(probs16 is null ? 0 : TypeCode(probs16.DType)));
    }

    /// <summary>The longest row attention_softmax_f32 keeps in its dynamic shared memory (48 KB, less its 128-byte reduction buffer).</summary>
    const int MaxSharedRow = (48 * 1024 - 128) / 4;

    /// <summary>
    /// How the rows of a bias or mask [.., g, h, N, M] (left-padded with 1s; g 1, B or a window mask's G; h 1 or H) map to the
    /// rows r of the scores [B, H, N, M]: row ((r / div) mod groups) inner + r mod inner. Inner -1 when the shape is another broadcast.
    /// </summary>
    static (int Inner, int Div, int Groups) RowsOf(Shape shape, in AttentionSpec s, bool window)
    {
        if (shape.Rank < 2 || shape.Rank > 4 || shape[-1] != s.M || shape[-2] != s.N) return (-1, 1, 1);
        int h = shape.Rank >= 3 ? shape[-3] : 1, g = shape.Rank == 4 ? shape[0] : 1;
        if (h != 1 && h != s.H) return (-1, 1, 1);
        if (!window && g != 1 && g != s.B) return (-1, 1, 1);
        return (h * s.N, s.H * s.N, g);
    }

    /// <summary>
    /// Runs a row kernel along axis dim: directly when the axes after dim are all 1, else on copies
    /// with dim moved last (inputs permuted in, outputs permuted back).
    /// </summary>
    void AlongLastAxis(Shape shape, int dim, Tensor[] inputs, Tensor[] outputs, Action<Tensor[], Tensor[], long, long> run)
    {
        long cols = shape[dim], inner = shape.Product(dim + 1, shape.Rank);
        long rows = cols == 0 ? 0 : Count(shape.Numel, "Softmax") / cols;
        if (rows == 0 || cols == 0) return;
        if (inner == 1)
        {
            run(inputs, outputs, rows, cols);
            return;
        }
        int rank = shape.Rank;
        var toLast = Enumerable.Range(0, rank).Where(a => a != dim).Append(dim).ToArray();
        var back = new int[rank];
        for (int i = 0; i < rank; i++) back[toLast[i]] = i;
        var moved = new Shape(toLast.Select(a => shape[a]).ToArray());
        var device = inputs[0].Device;
        var ins = inputs.Select(t => Work(device, moved.ToArray())).ToArray();
        var outs = outputs.Select(_ => Work(device, moved.ToArray())).ToArray();
        try
        {
            for (int i = 0; i < ins.Length; i++) Permute(inputs[i], toLast, ins[i]);
            run(ins, outs, rows, cols);
            for (int i = 0; i < outs.Length; i++) Permute(outs[i], back, outputs[i]);
        }
        finally
        {
            foreach (var t in ins.Concat(outs)) t.Dispose();
        }
    }
}

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

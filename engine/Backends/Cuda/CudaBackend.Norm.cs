using Sbp.Tensors;

namespace Sbp.Backends.Cuda;

// Layer norm (PTX, one block per row) and batch norm (cuDNN for training, broadcast kernels for the
// fixed-statistics forms).
public sealed partial class CudaBackend
{
    public void LayerNormForward(Tensor x, Tensor? weight, Tensor? bias, float eps, Tensor y, Tensor mean, Tensor rstd)
    {
        long rows = mean.Numel, cols = rows == 0 ? 0 : Count(x.Numel, "LayerNormForward") / rows;
        if (rows == 0) return;
        LaunchRows(PtxKernels.LayerNormF32, rows, cols, 0, Ptr(x), Ptr(weight), Ptr(bias), Ptr(y), Ptr(mean), Ptr(rstd), U32(rows), U32(cols), F32(eps),
            U32(ElementType(x.DType)), U32(ElementType(y.DType)));
    }

    /// <summary>Static shared memory of layer_norm_bwd_f32 (its two 32-float reduction arrays; a test checks it against the
    /// simulator's reading of kernels/layernorm.ptx): where its dynamic column accumulators start.</summary>
    internal const int LayerNormStaticShared = 2 * 32 * 4;

    /// <summary>
    /// Widest row whose weight and bias gradient accumulators (8 bytes a column) fit layer_norm_bwd_f32's dynamic shared
    /// memory next to the static part within CUDA's 48 KiB per block (without an opt-in): 6112 columns.
    /// </summary>
    internal const int LayerNormMaxParamCols = (48 * 1024 - LayerNormStaticShared) / 8;

    /// <summary>
    /// dx by layer_norm_bwd_f32 (block partials of the weight and bias gradients in shared memory, then
    /// layer_norm_bwd_params_f32); rows wider than <see cref="LayerNormMaxParamCols"/> take the weight and bias gradients
    /// as column sums instead: dbias = sum over rows of dy, dweight = sum over rows of dy (x - mean) rstd.
    /// </summary>
    public void LayerNormBackward(Tensor dy, Tensor x, Tensor? weight, Tensor mean, Tensor rstd, Tensor? dx, Tensor? dweight, Tensor? dbias)
    {
        long rows = mean.Numel, cols = rows == 0 ? dy.Shape[-1] : Count(x.Numel, "LayerNormBackward") / rows;
        if (rows == 0)
        {
            if (dweight is not null) Fill(dweight, 0f);
            if (dbias is not null) Fill(dbias, 0f);
            return;
        }
        bool parameters = dweight is not null || dbias is not null, inKernel = parameters && cols <= LayerNormMaxParamCols;
        uint grid = (uint)Math.Clamp(rows, 1, 256);
        var device = dy.Device;
        using var dwPart = dweight is null || !inKernel ? null : Work(device, (int)grid, (int)cols);
        using var dbPart = dbias is null || !inKernel ? null : Work(device, (int)grid, (int)cols);
        if (dx is not null || inKernel)
            LaunchGrid(PtxKernels.LayerNormBwdF32, grid, RowBlock(cols), inKernel ? (uint)(8 * cols) : 0,
                [Ptr(dy), Ptr(x), Ptr(weight), Ptr(mean), Ptr(rstd), Ptr(dx), Ptr(dwPart), Ptr(dbPart), U32(rows), U32(cols), U32(ElementType(x.DType))]);
        if (inKernel)
            Launch(PtxKernels.LayerNormBwdParamsF32, cols, Ptr(dwPart), Ptr(dbPart), Ptr(dweight), Ptr(dbias), U32(grid), U32(cols));
        else if (parameters)
        {
            using var wide = SixteenBitOperands.Widened(this, x);   // the column sums' broadcast ops read Float32
            LayerNormParamGradsBySums(dy, wide ?? x, mean, rstd, rows, cols, dweight, dbias);
        }
    }

    void LayerNormParamGradsBySums(Tensor dy, Tensor x, Tensor mean, Tensor rstd, long rows, long cols, Tensor? dweight, Tensor? dbias)
    {
        var matrix = new Shape((int)rows, (int)cols);
        var column = new Shape((int)rows, 1);
        var row = new Shape(1, (int)cols);
        using var g = dy.View(matrix, register: false);
        if (dbias is not null)
            using (var db = dbias.View(row, register: false)) ReduceSum(g, db);
        if (dweight is null) return;
        using var xs = x.View(matrix, register: false);
        using var m = mean.View(column, register: false);
        using var r = rstd.View(column, register: false);
        using var xhat = Work(dy.Device, (int)rows, (int)cols);
        Binary(BinaryOp.Sub, xs, m, xhat);
        Binary(BinaryOp.Mul, xhat, r, xhat);
        Binary(BinaryOp.Mul, xhat, g, xhat);
        using var dw = dweight.View(row, register: false);
        ReduceSum(xhat, dw);
    }

    static (int N, int C, long S) BatchNormDims(Tensor x) =>
        (x.Shape[0], x.Shape[1], x.Shape.Product(2, x.Rank));

    /// <summary>weight, or a tensor of ones when null (cuDNN needs a scale).</summary>
    Tensor OrFilled(Tensor? t, Device device, int c, float value)
    {
        if (t is not null) return t;
        var w = Work(device, c);
        Fill(w, value);
        return w;
    }

    public void BatchNormTrainForward(Tensor x, Tensor? weight, Tensor? bias, Tensor? runningMean, Tensor? runningVar,
        float momentum, float eps, Tensor y, Tensor saveMean, Tensor saveInvStd)
    {
        var (n, c, s) = BatchNormDims(x);
        var device = x.Device;
        var scale = OrFilled(weight, device, c, 1f);
        var shift = OrFilled(bias, device, c, 0f);
        // cuDNN updates both running statistics or neither: a missing one gets a scratch buffer.
        bool running = runningMean is not null || runningVar is not null;
        var rm = running ? OrFilled(runningMean, device, c, 0f) : null;
        var rv = running ? OrFilled(runningVar, device, c, 1f) : null;
        try
        {
            Api.BatchNormForwardTraining([n, c, checked((int)s), 1], P(x), P(y), P(scale), P(shift), momentum,
                rm is null ? 0 : P(rm), rv is null ? 0 : P(rv), eps, P(saveMean), P(saveInvStd));
        }
        finally
        {
            foreach (var (t, given) in new[] { (scale, weight), (shift, bias), (rm, runningMean), (rv, runningVar) })
                if (given is null) t?.Dispose();
        }
    }

    public void BatchNormBackward(Tensor dy, Tensor x, Tensor? weight, Tensor saveMean, Tensor saveInvStd,
        Tensor? dx, Tensor? dweight, Tensor? dbias, float eps)
    {
        var (n, c, s) = BatchNormDims(x);
        var device = x.Device;
        var scale = OrFilled(weight, device, c, 1f);
        var gx = dx ?? Work(device, x.Shape.ToArray());
        var gw = dweight ?? Work(device, c);
        var gb = dbias ?? Work(device, c);
        try
        {
            Api.BatchNormBackward([n, c, checked((int)s), 1], P(x), P(dy), P(gx), P(scale), P(gw), P(gb), eps, P(saveMean), P(saveInvStd));
        }
        finally
        {
            if (weight is null) scale.Dispose();
            if (dx is null) gx.Dispose();
            if (dweight is null) gw.Dispose();
            if (dbias is null) gb.Dispose();
        }
    }

    public void BatchNormInferenceForward(Tensor x, Tensor? weight, Tensor? bias, Tensor mean, Tensor invStd, Tensor y)
    {
        var (n, c, s) = BatchNormDims(x);
        if (x.Numel == 0) return;
        ChannelOp(BinaryOp.Sub, x, mean, y, n, c, s);
        ChannelOp(BinaryOp.Mul, y, invStd, y, n, c, s);
        if (weight is not null) ChannelOp(BinaryOp.Mul, y, weight, y, n, c, s);
        if (bias is not null) ChannelOp(BinaryOp.Add, y, bias, y, n, c, s);
    }

    public void BatchNormInferenceBackward(Tensor dy, Tensor? x, Tensor? weight, Tensor mean, Tensor invStd,
        Tensor? dx, Tensor? dweight, Tensor? dbias)
    {
        var (n, c, s) = BatchNormDims(dy);
        int[] dims = [n, c, checked((int)s)];
        bool[] overNs = [true, false, true];
        if (dx is not null)
        {
            if (weight is not null) ChannelOp(BinaryOp.Mul, dy, weight, dx, n, c, s);
            else Copy(dy, dx);
            ChannelOp(BinaryOp.Mul, dx, invStd, dx, n, c, s);
        }
        if (dweight is not null)
        {
            if (x is null) throw new ArgumentNullException(nameof(x), "BatchNormInferenceBackward: dweight needs x.");
            if (dy.Numel == 0) Fill(dweight, 0f);
            else
            {
                using var t = Work(dy.Device, dy.Shape.ToArray());
                ChannelOp(BinaryOp.Sub, x, mean, t, n, c, s);
                ChannelOp(BinaryOp.Mul, t, invStd, t, n, c, s);
                Binary(BinaryOp.Mul, t, dy, t);
                ReduceRaw(dy.Device, P(t), dims, overNs, P(dweight), max: false);
            }
        }
        if (dbias is not null)
        {
            if (dy.Numel == 0) Fill(dbias, 0f);
            else ReduceRaw(dy.Device, P(dy), dims, overNs, P(dbias), max: false);
        }
    }
}

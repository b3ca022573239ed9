using Sbp.Engine.Tests.Support;

namespace Sbp.Engine.Tests.Nn.Norm;

/// <summary>Direct float64 layer norm and batch norm, one output element at a time.</summary>
public static class NormReference
{
    /// <summary>Layer norm over the trailing <paramref name="normalizedDims"/> dims of x.</summary>
    public static RefTensor LayerNorm(RefTensor x, int normalizedDims, RefTensor? w, RefTensor? b, double eps = 1e-5)
    {
        int cols = 1;
        for (int i = x.Rank - normalizedDims; i < x.Rank; i++) cols *= x.Shape[i];
        int rows = x.Data.Length / cols;
        var y = RefTensor.Zeros(x.Shape);
        for (int r = 0; r < rows; r++)
        {
            double mean = 0;
            for (int j = 0; j < cols; j++) mean += x.Data[r * cols + j];
            mean /= cols;
            double var = 0;
            for (int j = 0; j < cols; j++) var += Math.Pow(x.Data[r * cols + j] - mean, 2);
            var /= cols;
            for (int j = 0; j < cols; j++)
            {
                double v = (x.Data[r * cols + j] - mean) / Math.Sqrt(var + eps);
                y.Data[r * cols + j] = v * (w?.Data[j] ?? 1.0) + (b?.Data[j] ?? 0.0);
            }
        }
        return y;
    }

    /// <summary>Per-channel mean and biased / unbiased variance of x [N, C, ...].</summary>
    public static (double[] mean, double[] biased, double[] unbiased) ChannelStats(RefTensor x)
    {
        int c = x.Shape[1];
        var values = Enumerable.Range(0, c).Select(_ => new List<double>()).ToArray();
        for (int k = 0; k < x.Data.Length; k++) values[Ref.Unravel(k, x.Shape)[1]].Add(x.Data[k]);
        var mean = values.Select(v => v.Average()).ToArray();
        var biased = values.Select((v, i) => v.Sum(e => Math.Pow(e - mean[i], 2)) / v.Count).ToArray();
        var unbiased = values.Select((v, i) => v.Sum(e => Math.Pow(e - mean[i], 2)) / (v.Count - 1)).ToArray();
        return (mean, biased, unbiased);
    }

    /// <summary>Batch norm of x [N, C, ...] with the given per-channel mean and variance.</summary>
    public static RefTensor BatchNorm(RefTensor x, double[] mean, double[] var, RefTensor? w, RefTensor? b, double eps = 1e-5)
    {
        var y = RefTensor.Zeros(x.Shape);
        for (int k = 0; k < x.Data.Length; k++)
        {
            int ch = Ref.Unravel(k, x.Shape)[1];
            y.Data[k] = (x.Data[k] - mean[ch]) / Math.Sqrt(var[ch] + eps) * (w?.Data[ch] ?? 1.0) + (b?.Data[ch] ?? 0.0);
        }
        return y;
    }
}

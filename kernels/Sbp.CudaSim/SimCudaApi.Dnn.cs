using Sbp.Backends.Cuda;
using Sbp.Tensors;

namespace Sbp.CudaSim;

// Reference cuDNN (legacy API semantics) over fully packed NCDHW float32 tensors.
internal sealed partial class SimCudaApi
{
    /// <summary>Workspace the simulated "algorithm" asks for, so the backend's pool workspace path is exercised.</summary>
    public const long ConvWorkspaceBytes = 1024;

    /// <summary>Candidates the simulated heuristics rank before their own (algorithm 0, deterministic, <see cref="ConvWorkspaceBytes"/>):
    /// a test sets them to see how the backend chooses (every algorithm computes the same reference convolution).</summary>
    public IReadOnlyList<ConvCandidate> ExtraConvCandidates { get; set; } = [];

    /// <summary>False: a 16-bit convolution gets no usable algorithm (a cuDNN or GPU without the configuration), for tests.</summary>
    public bool Has16BitConvolutions { get; set; } = true;

    /// <summary>The algorithm the last convolution call ran with.</summary>
    public int LastConvAlgorithm { get; private set; } = -1;

    public IReadOnlyList<ConvCandidate> ConvolutionCandidates(ConvDirection direction, ConvDescriptor d)
    {
        string fn = direction switch
        {
            ConvDirection.Forward => "cudnnGetConvolutionForwardAlgorithm_v7",
            ConvDirection.BackwardData => "cudnnGetConvolutionBackwardDataAlgorithm_v7",
            _ => "cudnnGetConvolutionBackwardFilterAlgorithm_v7",
        };
        Called(fn);
        Validate(d, fn);
        if (!Has16BitConvolutions && d.Data != DType.Float32) return [new ConvCandidate(0, false, true, 0)];
        return [.. ExtraConvCandidates, new ConvCandidate(0, true, true, ConvWorkspaceBytes)];
    }

    /// <summary>cuDNN's checks: 4-D or 5-D tensors with 2 or 3 spatial parameters, x's channels = filter's input channels x groups,
    /// O divisible by G, y = the output size per axis.</summary>
    static void Validate(ConvDescriptor described, string fn)
    {
        if (described.Data is not (DType.Float32 or DType.BFloat16 or DType.Float16))
            throw CudnnError(fn, $"data type {described.Data}: the convolutions take FLOAT, BFLOAT16 or HALF");
        int axes = described.Pad.Length;
        if (axes is not (2 or 3) || described.X.Length != axes + 2 || described.W.Length != axes + 2 || described.Y.Length != axes + 2
            || described.Stride.Length != axes || described.Dilation.Length != axes)
            throw CudnnError(fn, "descriptors must be 4-D (NCHW) with 2 spatial parameters or 5-D (NCDHW) with 3");
        var d = described.As3d();
        if (d.Groups < 1 || d.X[1] != d.W[1] * d.Groups || d.W[0] % d.Groups != 0 || d.Y[1] != d.W[0] || d.Y[0] != d.X[0])
            throw CudnnError(fn, $"channel counts do not match (x {string.Join(',', d.X)}, w {string.Join(',', d.W)}, y {string.Join(',', d.Y)}, groups {d.Groups})");
        for (int a = 0; a < 3; a++)
        {
            if (d.Stride[a] < 1 || d.Dilation[a] < 1 || d.Pad[a] < 0) throw CudnnError(fn, "stride and dilation must be >= 1, padding >= 0");
            long o = ((long)d.X[a + 2] + 2L * d.Pad[a] - (long)d.Dilation[a] * (d.W[a + 2] - 1) - 1) / d.Stride[a] + 1;
            if (o != d.Y[a + 2]) throw CudnnError(fn, $"y's spatial size {d.Y[a + 2]} on axis {a} is not the convolution's output size {o}");
        }
    }

    void CheckWorkspace(ConvAlgorithm algo, ulong workspace, string fn)
    {
        if (algo.WorkspaceBytes == 0) return;
        if (workspace == 0) throw CudnnError(fn, $"the algorithm needs {algo.WorkspaceBytes} bytes of workspace and none was given");
        Memory.Read<byte>(workspace, new byte[algo.WorkspaceBytes]);   // must be one live allocation of that size
    }

    /// <summary>
    /// Walks every (n, o, output position, c within the group, kernel tap) with an in-bounds input
    /// position, calling visit(x index, w index, y index): the one loop nest the three directions share.
    /// </summary>
    static void Taps(ConvDescriptor described, Action<long, long, long> visit)
    {
        var d = described.As3d();
        int N = d.X[0], C = d.X[1], O = d.W[0], Cg = d.W[1], G = d.Groups, Og = O / G;
        int[] inp = [d.X[2], d.X[3], d.X[4]], k = [d.W[2], d.W[3], d.W[4]], o = [d.Y[2], d.Y[3], d.Y[4]];
        for (int n = 0; n < N; n++)
            for (int oc = 0; oc < O; oc++)
            {
                int g = oc / Og;
                for (int ot = 0; ot < o[0]; ot++)
                    for (int oh = 0; oh < o[1]; oh++)
                        for (int ow = 0; ow < o[2]; ow++)
                        {
                            long yi = ((((long)n * O + oc) * o[0] + ot) * o[1] + oh) * o[2] + ow;
                            for (int cg = 0; cg < Cg; cg++)
                            {
                                int c = g * Cg + cg;
                                for (int i = 0; i < k[0]; i++)
                                {
                                    int t = ot * d.Stride[0] - d.Pad[0] + i * d.Dilation[0];
                                    if (t < 0 || t >= inp[0]) continue;
                                    for (int j = 0; j < k[1]; j++)
                                    {
                                        int h = oh * d.Stride[1] - d.Pad[1] + j * d.Dilation[1];
                                        if (h < 0 || h >= inp[1]) continue;
                                        for (int l = 0; l < k[2]; l++)
                                        {
                                            int w = ow * d.Stride[2] - d.Pad[2] + l * d.Dilation[2];
                                            if (w < 0 || w >= inp[2]) continue;
                                            long xi = ((((long)n * C + c) * inp[0] + t) * inp[1] + h) * inp[2] + w;
                                            long wi = ((((long)oc * Cg + cg) * k[0] + i) * k[1] + j) * k[2] + l;
                                            visit(xi, wi, yi);
                                        }
                                    }
                                }
                            }
                        }
            }
    }

    static long Volume(int[] dims) => dims.Aggregate(1L, (p, v) => p * v);

    /// <summary>
    /// cudnnConvolutionForward, cross-correlation, alpha 1, beta 0: y = sum w x (float64 accumulation); 16-bit data read
    /// widened, y rounded to Float32 and then to the data type (the Float32 convolution on the widenings, rounded).
    /// </summary>
    public void ConvolutionForward(ConvDescriptor d, ConvAlgorithm algo, ulong x, ulong w, ulong y, ulong workspace) =>
        ConvPass("cudnnConvolutionForward", d, algo, workspace, y, d.Y, acc =>
        {
            var X = Read(x, Volume(d.X), d.Data);
            var W = Read(w, Volume(d.W), d.Data);
            Taps(d, (xi, wi, yi) => acc[yi] += (double)W[wi] * X[xi]);
        });

    /// <summary>cudnnConvolutionBackwardData: dx = the adjoint of the forward applied to dy (16-bit data as in the forward).</summary>
    public void ConvolutionBackwardData(ConvDescriptor d, ConvAlgorithm algo, ulong w, ulong dy, ulong dx, ulong workspace) =>
        ConvPass("cudnnConvolutionBackwardData", d, algo, workspace, dx, d.X, acc =>
        {
            var W = Read(w, Volume(d.W), d.Data);
            var DY = Read(dy, Volume(d.Y), d.Data);
            Taps(d, (xi, wi, yi) => acc[xi] += (double)W[wi] * DY[yi]);
        });

    /// <summary>cudnnConvolutionBackwardFilter: dw = sum over the batch and positions of dy x (16-bit data as in the forward).</summary>
    public void ConvolutionBackwardFilter(ConvDescriptor d, ConvAlgorithm algo, ulong x, ulong dy, ulong dw, ulong workspace) =>
        ConvPass("cudnnConvolutionBackwardFilter", d, algo, workspace, dw, d.W, acc =>
        {
            var X = Read(x, Volume(d.X), d.Data);
            var DY = Read(dy, Volume(d.Y), d.Data);
            Taps(d, (xi, wi, yi) => acc[wi] += (double)DY[yi] * X[xi]);
        });

    /// <summary>
    /// One convolution pass as cuDNN checks it: the descriptor, the workspace, then <paramref name="sum"/>
    /// fills a float64 accumulator of the output's size (under the device lock) and the output is written.
    /// </summary>
    void ConvPass(string fn, ConvDescriptor d, ConvAlgorithm algo, ulong workspace, ulong output, int[] outputDims, Action<double[]> sum)
    {
        Called(fn);
        Validate(d, fn);
        lock (_gate)
        {
            CheckWorkspace(algo, workspace, fn);
            LastConvAlgorithm = algo.Algo;
            var acc = new double[Volume(outputDims)];
            sum(acc);
            Write(output, acc.Select(v => (float)v).ToArray(), d.Data);
        }
    }

    static (int N, int C, long S) BnDims(int[] xDims, string fn)
    {
        if (xDims.Length != 4 || xDims[3] != 1) throw CudnnError(fn, "the backend describes batch norm inputs as 4-D [N, C, S, 1]");
        return (xDims[0], xDims[1], xDims[2]);
    }

    /// <summary>
    /// cudnnBatchNormalizationForwardTraining, SPATIAL: per channel over M = N S values, the mean and
    /// biased variance; y = (x - mean) / sqrt(var + eps) scale + bias; saveInvVar = 1 / sqrt(var + eps);
    /// running = (1 - factor) running + factor stat, with the unbiased variance for runningVar.
    /// </summary>
    public void BatchNormForwardTraining(int[] xDims, ulong x, ulong y, ulong scale, ulong bias, double averageFactor,
        ulong runningMean, ulong runningVar, double eps, ulong saveMean, ulong saveInvVar)
    {
        const string Fn = "cudnnBatchNormalizationForwardTraining";
        Called(Fn);
        var (n, c, s) = BnDims(xDims, Fn);
        if ((runningMean == 0) != (runningVar == 0)) throw CudnnError(Fn, "resultRunningMean and resultRunningVariance must both be given or both be NULL");
        lock (_gate)
        {
            var X = ReadFloats(x, n * c * s);
            var (g, b) = (ReadFloats(scale, c), ReadFloats(bias, c));
            var Y = new float[X.Length];
            var (sm, si) = (new float[c], new float[c]);
            var (rm, rv) = runningMean == 0 ? (null, null) : (ReadFloats(runningMean, c), ReadFloats(runningVar, c));
            long m = n * s;
            for (int ch = 0; ch < c; ch++)
            {
                double sum = 0, sq = 0;
                for (int i = 0; i < n; i++)
                    for (long j = 0; j < s; j++) sum += X[(i * c + ch) * s + j];
                double mean = sum / m;
                for (int i = 0; i < n; i++)
                    for (long j = 0; j < s; j++) { double dv = X[(i * c + ch) * s + j] - mean; sq += dv * dv; }
                double var = sq / m, inv = 1 / Math.Sqrt(var + eps);
                for (int i = 0; i < n; i++)
                    for (long j = 0; j < s; j++)
                    {
                        long at = (i * c + ch) * s + j;
                        Y[at] = (float)((X[at] - mean) * inv * g[ch] + b[ch]);
                    }
                sm[ch] = (float)mean;
                si[ch] = (float)inv;
                if (rm is not null)
                {
                    rm[ch] = (float)((1 - averageFactor) * rm[ch] + averageFactor * mean);
                    rv![ch] = (float)((1 - averageFactor) * rv[ch] + averageFactor * (m > 1 ? var * m / (m - 1) : var));
                }
            }
            WriteFloats(y, Y);
            if (saveMean != 0)
            {
                WriteFloats(saveMean, sm);
                _batchNormEps[saveMean] = eps;
            }
            if (saveInvVar != 0) WriteFloats(saveInvVar, si);
            if (rm is not null)
            {
                WriteFloats(runningMean, rm);
                WriteFloats(runningVar, rv!);
            }
        }
    }

    /// <summary>
    /// cudnnBatchNormalizationBackward, SPATIAL, all scaling factors (1, 0): with the saved mean and
    /// inverse deviation, xhat = (x - mean) inv, dBias = sum dy, dScale = sum dy xhat,
    /// dx = scale inv (dy - dBias / M - xhat dScale / M).
    /// </summary>
    public void BatchNormBackward(int[] xDims, ulong x, ulong dy, ulong dx, ulong scale, ulong dScale, ulong dBias,
        double eps, ulong saveMean, ulong saveInvVar)
    {
        const string Fn = "cudnnBatchNormalizationBackward";
        Called(Fn);
        var (n, c, s) = BnDims(xDims, Fn);
        if (saveMean == 0 || saveInvVar == 0) throw CudnnError(Fn, "the simulated device implements the saved-statistics path only");
        lock (_gate)
            if (_batchNormEps.TryGetValue(saveMean, out double forwardEps) && forwardEps != eps)
                throw CudnnError(Fn, $"epsilon {eps:G6} differs from the {forwardEps:G6} of the forward pass that saved these statistics (cuDNN: \"the same epsilon value should be used in forward and backward functions\")");
        lock (_gate)
        {
            var X = ReadFloats(x, n * c * s);
            var DY = ReadFloats(dy, n * c * s);
            var (g, mean, inv) = (ReadFloats(scale, c), ReadFloats(saveMean, c), ReadFloats(saveInvVar, c));
            var DX = new float[X.Length];
            var (dg, db) = (new float[c], new float[c]);
            long m = n * s;
            for (int ch = 0; ch < c; ch++)
            {
                double sdy = 0, sdx = 0;
                for (int i = 0; i < n; i++)
                    for (long j = 0; j < s; j++)
                    {
                        long at = (i * c + ch) * s + j;
                        sdy += DY[at];
                        sdx += DY[at] * ((X[at] - mean[ch]) * (double)inv[ch]);
                    }
                for (int i = 0; i < n; i++)
                    for (long j = 0; j < s; j++)
                    {
                        long at = (i * c + ch) * s + j;
                        double xhat = (X[at] - mean[ch]) * (double)inv[ch];
                        DX[at] = (float)(g[ch] * inv[ch] * (DY[at] - sdy / m - xhat * sdx / m));
                    }
                dg[ch] = (float)sdx;
                db[ch] = (float)sdy;
            }
            WriteFloats(dx, DX);
            WriteFloats(dScale, dg);
            WriteFloats(dBias, db);
        }
    }

    /// <summary>cudnnPoolingForward: averages (with or without the padding in the divisor) and max.</summary>
    public void PoolingForward(PoolDescriptor d, ulong x, ulong y)
    {
        const string Fn = "cudnnPoolingForward";
        Called(Fn);
        lock (_gate)
        {
            var X = ReadFloats(x, Volume(d.X));
            var Y = new float[Volume(d.Y)];
            Windows(d, (yi, xs, divisor) =>
            {
                if (d.Mode == CudnnPoolMode.Max) Y[yi] = xs.Count == 0 ? float.NegativeInfinity : xs.Max(i => X[i]);
                else Y[yi] = divisor == 0 ? 0f : (float)(xs.Sum(i => (double)X[i]) / divisor);
            });
            WriteFloats(y, Y);
        }
    }

    /// <summary>cudnnPoolingBackward for the average modes: each dy spread evenly over its window (x and y unused).</summary>
    public void PoolingBackward(PoolDescriptor d, ulong y, ulong dy, ulong x, ulong dx)
    {
        const string Fn = "cudnnPoolingBackward";
        Called(Fn);
        if (d.Mode == CudnnPoolMode.Max) throw CudnnError(Fn, "the simulated device implements the average modes of the backward only");
        lock (_gate)
        {
            var DY = ReadFloats(dy, Volume(d.Y));
            var DX = new double[Volume(d.X)];
            Windows(d, (yi, xs, divisor) =>
            {
                if (divisor == 0) return;
                double g = DY[yi] / (double)divisor;
                foreach (var i in xs) DX[i] += g;
            });
            WriteFloats(dx, DX.Select(v => (float)v).ToArray());
        }
    }

    /// <summary>Each output's in-bounds input indices and its average divisor (window volume with padding, else the in-bounds count).</summary>
    static void Windows(PoolDescriptor d, Action<long, List<long>, long> visit)
    {
        int planes = d.X[0] * d.X[1];
        int[] inp = [d.X[2], d.X[3], d.X[4]], o = [d.Y[2], d.Y[3], d.Y[4]];
        var xs = new List<long>();
        long yi = 0;
        for (int p = 0; p < planes; p++)
            for (int ot = 0; ot < o[0]; ot++)
                for (int oh = 0; oh < o[1]; oh++)
                    for (int ow = 0; ow < o[2]; ow++, yi++)
                    {
                        xs.Clear();
                        int[] start = [ot * d.Stride[0] - d.Pad[0], oh * d.Stride[1] - d.Pad[1], ow * d.Stride[2] - d.Pad[2]];
                        for (int t = Math.Max(0, start[0]); t < Math.Min(inp[0], start[0] + d.Window[0]); t++)
                            for (int h = Math.Max(0, start[1]); h < Math.Min(inp[1], start[1] + d.Window[1]); h++)
                                for (int w = Math.Max(0, start[2]); w < Math.Min(inp[2], start[2] + d.Window[2]); w++)
                                    xs.Add((((long)p * inp[0] + t) * inp[1] + h) * inp[2] + w);
                        long divisor = d.Mode == CudnnPoolMode.AverageCountIncludePadding ? (long)d.Window[0] * d.Window[1] * d.Window[2] : xs.Count;
                        visit(yi, xs, divisor);
                    }
    }
}

using System.Globalization;
using System.Text;
using Sbp.Tensors;

namespace Sbp.Engine.Tests.Support;

/// <summary>A dense row-major float64 array: the reference side of forward checks.</summary>
public sealed class RefTensor(double[] data, int[] shape)
{
    public double[] Data { get; } = data.Length == Ref.Numel(shape)
        ? data
        : throw new ArgumentException($"RefTensor: {data.Length} values for shape {Ref.Format(shape)}.");
    public int[] Shape { get; } = shape;
    public int Rank => Shape.Length;

    public static RefTensor Of(float[] data, params int[] shape) => new(data.Select(v => (double)v).ToArray(), shape);
    public static RefTensor Zeros(params int[] shape) => new(new double[Ref.Numel(shape)], shape);

    public double this[params int[] index]
    {
        get => Data[Ref.Ravel(index, Shape)];
        set => Data[Ref.Ravel(index, Shape)] = value;
    }

    public override string ToString() => $"RefTensor{Ref.Format(Shape)}";
}

/// <summary>
/// Direct float64 implementations of the ops, by plain index arithmetic (one output element at a
/// time, no shortcuts), written independently of the engine, plus the comparison of an engine
/// tensor against them.
/// </summary>
public static class Ref
{
    // ---- indexing ---------------------------------------------------------------------------

    public static int Numel(int[] shape) => shape.Aggregate(1, (p, d) => checked(p * d));

    public static string Format(int[] shape) => "[" + string.Join(", ", shape) + "]";

    public static int[] Unravel(int flat, int[] shape)
    {
        var index = new int[shape.Length];
        for (int i = shape.Length - 1; i >= 0; i--)
        {
            index[i] = flat % shape[i];
            flat /= shape[i];
        }
        return index;
    }

    public static int Ravel(int[] index, int[] shape)
    {
        if (index.Length != shape.Length) throw new ArgumentException($"index of rank {index.Length} for shape {Format(shape)}");
        int flat = 0;
        for (int i = 0; i < shape.Length; i++)
        {
            if (index[i] < 0 || index[i] >= shape[i]) throw new IndexOutOfRangeException($"index {Format(index)} outside {Format(shape)}");
            flat = flat * shape[i] + index[i];
        }
        return flat;
    }

    static int Axis(int dim, int rank) => dim < 0 ? dim + rank : dim;

    /// <summary>NumPy broadcasting of two shapes.</summary>
    public static int[] BroadcastShape(int[] a, int[] b)
    {
        int rank = Math.Max(a.Length, b.Length);
        var d = new int[rank];
        for (int i = 0; i < rank; i++)
        {
            int da = i < rank - a.Length ? 1 : a[i - (rank - a.Length)];
            int db = i < rank - b.Length ? 1 : b[i - (rank - b.Length)];
            if (da != db && da != 1 && db != 1) throw new ArgumentException($"cannot broadcast {Format(a)} and {Format(b)}");
            d[i] = Math.Max(da, db);
        }
        return d;
    }

    /// <summary>The element of an operand of <paramref name="shape"/> seen at <paramref name="outIndex"/> of a broadcast result.</summary>
    static int BroadcastSource(int[] outIndex, int[] shape)
    {
        int off = outIndex.Length - shape.Length;
        var index = new int[shape.Length];
        for (int i = 0; i < shape.Length; i++) index[i] = shape[i] == 1 ? 0 : outIndex[i + off];
        return Ravel(index, shape);
    }

    // ---- elementwise ------------------------------------------------------------------------

    public static RefTensor Map(RefTensor x, Func<double, double> f) => new(x.Data.Select(f).ToArray(), x.Shape);

    public static RefTensor Zip(RefTensor a, RefTensor b, Func<double, double, double> f)
    {
        var shape = BroadcastShape(a.Shape, b.Shape);
        var y = new double[Numel(shape)];
        for (int k = 0; k < y.Length; k++)
        {
            var idx = Unravel(k, shape);
            y[k] = f(a.Data[BroadcastSource(idx, a.Shape)], b.Data[BroadcastSource(idx, b.Shape)]);
        }
        return new RefTensor(y, shape);
    }

    public static RefTensor BroadcastTo(RefTensor x, int[] shape)
    {
        if (!BroadcastShape(x.Shape, shape).SequenceEqual(shape)) throw new ArgumentException("not broadcastable");
        var y = new double[Numel(shape)];
        for (int k = 0; k < y.Length; k++) y[k] = x.Data[BroadcastSource(Unravel(k, shape), x.Shape)];
        return new RefTensor(y, shape);
    }

    public static RefTensor SumTo(RefTensor x, int[] shape)
    {
        var y = RefTensor.Zeros(shape);
        for (int k = 0; k < x.Data.Length; k++) y.Data[BroadcastSource(Unravel(k, x.Shape), shape)] += x.Data[k];
        return y;
    }

    // ---- reductions --------------------------------------------------------------------------

    /// <summary>Applies <paramref name="reduce"/> to the elements of each output position (all axes when dims is empty).</summary>
    public static RefTensor Reduce(RefTensor x, int[] dims, bool keepDim, Func<List<double>, double> reduce)
    {
        var axes = dims.Length == 0 ? Enumerable.Range(0, x.Rank).ToArray() : dims.Select(d => Axis(d, x.Rank)).ToArray();
        var kept = x.Shape.Select((d, i) => axes.Contains(i) ? 1 : d).ToArray();
        var groups = Enumerable.Range(0, Numel(kept)).Select(_ => new List<double>()).ToArray();
        for (int k = 0; k < x.Data.Length; k++)
        {
            var idx = Unravel(k, x.Shape);
            foreach (var a in axes) idx[a] = 0;
            groups[Ravel(idx, kept)].Add(x.Data[k]);
        }
        var outShape = keepDim ? kept : x.Shape.Where((_, i) => !axes.Contains(i)).ToArray();
        return new RefTensor(groups.Select(reduce).ToArray(), outShape);
    }

    public static RefTensor Sum(RefTensor x, int[] dims, bool keepDim = false) => Reduce(x, dims, keepDim, g => g.Sum());
    public static RefTensor Mean(RefTensor x, int[] dims, bool keepDim = false) => Reduce(x, dims, keepDim, g => g.Sum() / g.Count);
    public static RefTensor Max(RefTensor x, int[] dims, bool keepDim = false) => Reduce(x, dims, keepDim, g => g.Max());

    // ---- layout ------------------------------------------------------------------------------

    public static RefTensor Permute(RefTensor x, int[] perm)
    {
        var p = perm.Select(d => Axis(d, x.Rank)).ToArray();
        var shape = p.Select(d => x.Shape[d]).ToArray();
        var y = RefTensor.Zeros(shape);
        for (int k = 0; k < y.Data.Length; k++)
        {
            var outIdx = Unravel(k, shape);
            var inIdx = new int[x.Rank];
            for (int i = 0; i < p.Length; i++) inIdx[p[i]] = outIdx[i];
            y.Data[k] = x[inIdx];
        }
        return y;
    }

    public static RefTensor Slice(RefTensor x, int dim, int start, int length)
    {
        int d = Axis(dim, x.Rank);
        var shape = (int[])x.Shape.Clone();
        shape[d] = length;
        var y = RefTensor.Zeros(shape);
        for (int k = 0; k < y.Data.Length; k++)
        {
            var idx = Unravel(k, shape);
            idx[d] += start;
            y.Data[k] = x[idx];
        }
        return y;
    }

    public static RefTensor Concat(RefTensor[] xs, int dim)
    {
        int d = Axis(dim, xs[0].Rank);
        var shape = (int[])xs[0].Shape.Clone();
        shape[d] = xs.Sum(x => x.Shape[d]);
        var y = RefTensor.Zeros(shape);
        for (int k = 0; k < y.Data.Length; k++)
        {
            var idx = Unravel(k, shape);
            int part = 0;
            while (idx[d] >= xs[part].Shape[d]) idx[d] -= xs[part++].Shape[d];
            y.Data[k] = xs[part][idx];
        }
        return y;
    }

    // ---- indexing ops ------------------------------------------------------------------------

    public static RefTensor IndexSelect(RefTensor x, int dim, int[] indices)
    {
        int d = Axis(dim, x.Rank);
        var shape = (int[])x.Shape.Clone();
        shape[d] = indices.Length;
        var y = RefTensor.Zeros(shape);
        for (int k = 0; k < y.Data.Length; k++)
        {
            var idx = Unravel(k, shape);
            idx[d] = indices[idx[d]];
            y.Data[k] = x[idx];
        }
        return y;
    }

    public static RefTensor IndexAdd(RefTensor x, int dim, int[] indices, RefTensor source)
    {
        int d = Axis(dim, x.Rank);
        var y = new RefTensor((double[])x.Data.Clone(), x.Shape);
        for (int k = 0; k < source.Data.Length; k++)
        {
            var idx = Unravel(k, source.Shape);
            idx[d] = indices[idx[d]];
            y[idx] += source.Data[k];
        }
        return y;
    }

    // ---- softmax -----------------------------------------------------------------------------

    public static RefTensor Softmax(RefTensor x, int dim, bool log = false)
    {
        int d = Axis(dim, x.Rank);
        var y = RefTensor.Zeros(x.Shape);
        for (int k = 0; k < x.Data.Length; k++)
        {
            var idx = Unravel(k, x.Shape);
            if (idx[d] != 0) continue;                       // one pass per row along d
            var row = new double[x.Shape[d]];
            for (int j = 0; j < row.Length; j++) { idx[d] = j; row[j] = x[idx]; }
            double max = row.Max();
            double sum = row.Sum(v => Math.Exp(v - max));
            for (int j = 0; j < row.Length; j++)
            {
                idx[d] = j;
                y[idx] = log ? row[j] - max - Math.Log(sum) : Math.Exp(row[j] - max) / sum;
            }
        }
        return y;
    }

    // ---- matrix products ---------------------------------------------------------------------

    /// <summary>torch.matmul: 1-D operands promoted (and the added axis dropped), batch axes broadcast.</summary>
    public static RefTensor Matmul(RefTensor a, RefTensor b)
    {
        bool aVec = a.Rank == 1, bVec = b.Rank == 1;
        var A = aVec ? new RefTensor(a.Data, [1, a.Shape[0]]) : a;
        var B = bVec ? new RefTensor(b.Data, [b.Shape[0], 1]) : b;
        int m = A.Shape[^2], k = A.Shape[^1], n = B.Shape[^1];
        if (B.Shape[^2] != k) throw new ArgumentException("inner dimensions differ");
        var aBatch = A.Shape[..^2];
        var bBatch = B.Shape[..^2];
        var batch = BroadcastShape(aBatch, bBatch);
        var y = RefTensor.Zeros([.. batch, m, n]);
        for (int bi = 0; bi < Numel(batch); bi++)
        {
            var bIdx = Unravel(bi, batch);
            int ia = BroadcastSource(bIdx, aBatch), ib = BroadcastSource(bIdx, bBatch);
            for (int i = 0; i < m; i++)
                for (int j = 0; j < n; j++)
                {
                    double s = 0;
                    for (int kk = 0; kk < k; kk++)
                        s += A.Data[(ia * m + i) * k + kk] * B.Data[(ib * k + kk) * n + j];
                    y.Data[(bi * m + i) * n + j] = s;
                }
        }
        var shape = y.Shape.ToList();
        if (bVec) shape.RemoveAt(shape.Count - 1);
        if (aVec) shape.RemoveAt(shape.Count - (bVec ? 1 : 2));
        return new RefTensor(y.Data, [.. shape]);
    }

    /// <summary>x W^T + b with x [..., in], W [out, in], b [out].</summary>
    public static RefTensor Linear(RefTensor x, RefTensor w, RefTensor? b)
    {
        int inF = w.Shape[1], outF = w.Shape[0], rows = x.Data.Length / inF;
        var shape = (int[])x.Shape.Clone();
        shape[^1] = outF;
        var y = RefTensor.Zeros(shape);
        for (int r = 0; r < rows; r++)
            for (int o = 0; o < outF; o++)
            {
                double s = b?.Data[o] ?? 0.0;
                for (int i = 0; i < inF; i++) s += x.Data[r * inF + i] * w.Data[o * inF + i];
                y.Data[r * outF + o] = s;
            }
        return y;
    }

    // ---- special functions -------------------------------------------------------------------

    /// <summary>
    /// erf(x) = 2/sqrt(pi) * exp(-x^2) * sum_n 2^n x^(2n+1) / (1*3*...*(2n+1)): every term positive,
    /// so no cancellation; summed until the terms stop mattering (double precision). |x| &gt;= 6
    /// gives ±1 to double precision.
    /// </summary>
    public static double Erf(double x)
    {
        if (double.IsNaN(x)) return double.NaN;
        double z = Math.Abs(x);
        if (z >= 6.0) return Math.Sign(x);
        double term = z, sum = z, z2 = z * z;
        for (int n = 1; n < 500; n++)
        {
            term *= 2.0 * z2 / (2 * n + 1);
            sum += term;
            if (term < 1e-17 * sum) break;
        }
        double r = 2.0 / Math.Sqrt(Math.PI) * Math.Exp(-z2) * sum;
        return x < 0 ? -r : r;
    }

    public static double Gelu(double x) => 0.5 * x * (1.0 + Erf(x / Math.Sqrt(2.0)));

    public static double GeluTanh(double x) => 0.5 * x * (1.0 + Math.Tanh(Math.Sqrt(2.0 / Math.PI) * (x + 0.044715 * x * x * x)));

    // ---- comparison --------------------------------------------------------------------------

    /// <summary>
    /// Asserts that <paramref name="actual"/> has the reference's shape and that every element is
    /// within atol + rtol * |expected|; the message names the op, the first differing elements
    /// and both values.
    /// </summary>
    public static void AssertClose(string op, Tensor actual, RefTensor expected, double rtol = 1e-5, double atol = 1e-6)
    {
        Assert.That(actual.Shape, Is.EqualTo(new Shape(expected.Shape)), $"{op}: output shape");
        var got = actual.ToArray();
        var report = new StringBuilder();
        int bad = 0;
        for (int k = 0; k < got.Length; k++)
        {
            double e = expected.Data[k], diff = Math.Abs(got[k] - e), tol = atol + rtol * Math.Abs(e);
            if (diff <= tol) continue;   // also false for NaN
            if (bad++ < 6)
                report.AppendLine(string.Create(CultureInfo.InvariantCulture,
                    $"  {op}: element {k} {Format(Unravel(k, expected.Shape))}: got {got[k]:G9}, expected {e:G12} (|diff| {diff:G3} > {tol:G3})"));
        }
        if (bad > 0) Assert.Fail($"{op} {Format(expected.Shape)}: {bad} of {got.Length} elements differ from the float64 reference (rtol {rtol}, atol {atol}):\n{report}");
    }
}

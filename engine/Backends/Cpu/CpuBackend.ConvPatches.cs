using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using Sbp.Tensors;

namespace Sbp.Backends.Cpu;

// Convolutions over non-overlapping patches (a video transformer's patch embedding): their column matrix is a
// permutation of the input, so vol2col and col2vol are transposes of kW-wide runs, done 8 patches at a time in registers.
public sealed unsafe partial class CpuBackend
{
    /// <summary>
    /// Non-overlapping patches (stride = kernel, no padding or dilation, the input an exact multiple of
    /// the patch): a video transformer's patch embedding, whose columns are a permutation of the input.
    /// </summary>
    static bool IsPatchify(in ConvSpec s) =>
        s.Stride == s.Kernel && s.Padding == new Dim3(0, 0, 0) && s.Dilation == new Dim3(1, 1, 1) &&
        s.Input == new Dim3(s.Output.T * s.Kernel.T, s.Output.H * s.Kernel.H, s.Output.W * s.Kernel.W);

    /// <summary>
    /// <see cref="Vol2Col"/> for <see cref="IsPatchify"/> convolutions: each input row (c, t, h) is read once,
    /// in order, and dealt to the kW column rows of its kw offsets (a 4 x 8 transpose in registers when kW is 4,
    /// as Swin's 2x4x4 patches), instead of being read kW times with a stride of kW.
    /// </summary>
    static void PatchesToCol(ConvSpec s, Tensor x, int n0, int count, Tensor col)
    {
        long p = s.Output.Volume;
        int kw = s.Kernel.W, ow = s.Output.W;
        bool transpose4 = kw == 4 && Avx2.IsSupported;
        var order = Vector256.Create(0, 4, 2, 6, 1, 5, 3, 7);
        ForPatchRows(s, x, n0, count, col, (row, d) =>
        {
            int j = 0;
            if (transpose4)
                for (; j + 8 <= ow; j += 8)
                {
                    // 8 patches x 4 offsets in, 4 offsets x 8 patches out.
                    var v0 = Avx.LoadVector256(row + 4 * j);
                    var v1 = Avx.LoadVector256(row + 4 * j + 8);
                    var v2 = Avx.LoadVector256(row + 4 * j + 16);
                    var v3 = Avx.LoadVector256(row + 4 * j + 24);
                    var t0 = Avx.UnpackLow(v0, v1);
                    var t1 = Avx.UnpackHigh(v0, v1);
                    var t2 = Avx.UnpackLow(v2, v3);
                    var t3 = Avx.UnpackHigh(v2, v3);
                    Avx.Store(d + j, Avx2.PermuteVar8x32(Avx.UnpackLow(t0, t2), order));
                    Avx.Store(d + p + j, Avx2.PermuteVar8x32(Avx.UnpackHigh(t0, t2), order));
                    Avx.Store(d + 2 * p + j, Avx2.PermuteVar8x32(Avx.UnpackLow(t1, t3), order));
                    Avx.Store(d + 3 * p + j, Avx2.PermuteVar8x32(Avx.UnpackHigh(t1, t3), order));
                }
            for (; j < ow; j++)
                for (int c = 0; c < kw; c++) d[c * p + j] = row[(long)j * kw + c];
        });
    }

    /// <summary>
    /// <see cref="Col2Vol"/> for <see cref="IsPatchify"/> convolutions: each element of dx has exactly one column entry, so
    /// dx is written (not accumulated; the caller skips zeroing it), each input row (c, t, h) in order from the kW column
    /// rows of its kw offsets (the inverse of <see cref="PatchesToCol"/>'s transpose when kW is 4).
    /// </summary>
    static void ColToPatches(ConvSpec s, Tensor col, Tensor dx, int n0, int count)
    {
        long p = s.Output.Volume;
        int kw = s.Kernel.W, ow = s.Output.W;
        bool transpose4 = kw == 4 && Avx2.IsSupported;
        ForPatchRows(s, dx, n0, count, col, (row, c0) =>
        {
            int j = 0;
            if (transpose4)
                for (; j + 8 <= ow; j += 8)
                {
                    // 4 offsets x 8 patches in, 8 patches x 4 offsets out.
                    var a = Avx.LoadVector256(c0 + j);
                    var b = Avx.LoadVector256(c0 + p + j);
                    var c = Avx.LoadVector256(c0 + 2 * p + j);
                    var d = Avx.LoadVector256(c0 + 3 * p + j);
                    var ab0 = Avx.UnpackLow(a, b).AsDouble();     // p0k0 p0k1 p1k0 p1k1 | p4.. p5..
                    var ab1 = Avx.UnpackHigh(a, b).AsDouble();    // p2, p3 | p6, p7
                    var cd0 = Avx.UnpackLow(c, d).AsDouble();
                    var cd1 = Avx.UnpackHigh(c, d).AsDouble();
                    var w0 = Avx.UnpackLow(ab0, cd0).AsSingle();  // p0 | p4, 4 offsets each
                    var w1 = Avx.UnpackHigh(ab0, cd0).AsSingle(); // p1 | p5
                    var w2 = Avx.UnpackLow(ab1, cd1).AsSingle();  // p2 | p6
                    var w3 = Avx.UnpackHigh(ab1, cd1).AsSingle(); // p3 | p7
                    Avx.Store(row + 4 * j, Avx.Permute2x128(w0, w1, 0x20));
                    Avx.Store(row + 4 * j + 8, Avx.Permute2x128(w2, w3, 0x20));
                    Avx.Store(row + 4 * j + 16, Avx.Permute2x128(w0, w1, 0x31));
                    Avx.Store(row + 4 * j + 24, Avx.Permute2x128(w2, w3, 0x31));
                }
            for (; j < ow; j++)
                for (int c = 0; c < kw; c++) row[(long)j * kw + c] = c0[c * p + j];
        });
    }

    /// <summary>One input row of patches (oW runs of kW) and the column row of its kw = 0 offset (kw adds P).</summary>
    delegate void PatchRow(float* row, float* col);

    /// <summary>
    /// Calls <paramref name="body"/> for every input row (sample, c, t, h) of samples n0 .. n0 + count - 1 of
    /// <paramref name="volume"/> with its column row, in parallel over units (plane, kt, kh) = kW column rows each.
    /// </summary>
    static void ForPatchRows(ConvSpec s, Tensor volume, int n0, int count, Tensor col, PatchRow body)
    {
        Dim3 inp = s.Input, k = s.Kernel, o = s.Output;
        long inVol = inp.Volume, p = o.Volume;
        nint pv = volume.Pointer + (nint)((long)n0 * s.InChannels * inVol * sizeof(float)), pc = col.Pointer;
        CpuLoops.For((long)count * s.InChannels * k.T * k.H, p * k.W, (start, end) =>
        {
            for (long u = start; u < end; u++)
            {
                int kh = (int)(u % k.H);
                long q = u / k.H;
                int kt = (int)(q % k.T);
                float* plane = (float*)pv + q / k.T * inVol;
                float* cols = (float*)pc + u * k.W * p;
                for (int ot = 0; ot < o.T; ot++)
                    for (int oh = 0; oh < o.H; oh++)
                        body(plane + ((long)(ot * k.T + kt) * inp.H + oh * k.H + kh) * inp.W, cols + ((long)ot * o.H + oh) * o.W);
            }
        });
    }
}

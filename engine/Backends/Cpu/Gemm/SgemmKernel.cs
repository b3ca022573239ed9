using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace Sbp.Backends.Cpu.Gemm;

/// <summary>
/// The SGEMM micro-kernel: one <see cref="MR"/> x <see cref="NR"/> tile of C from a packed A
/// micro-panel (kc steps of MR values) and a packed B micro-panel (kc steps of NR values).
/// The sum over k runs in order, one fused multiply-add per step and element, in registers;
/// then C = alpha * acc (beta == 0: C is not read) or C = alpha * acc + beta * C (two roundings,
/// the same in the vector store and the scalar edge path, so an element's value never depends on
/// whether its tile was full). AVX2 + FMA: 12 ymm accumulators, 2 B loads and 1 broadcast per k.
/// Without FMA the portable kernel (scalar, unfused) runs instead.
/// </summary>
static unsafe class SgemmKernel
{
    public const int MR = 6;
    public const int NR = 16;

    /// <summary>Tests set this to check the portable path on AVX2 machines.</summary>
    internal static bool ForcePortable { get; set; }

    public static bool UsesAvx2 => Fma.IsSupported && Avx2.IsSupported && !ForcePortable;

    /// <summary>
    /// C[0..mr, 0..nr] (row stride ldc) from the packed panels; mr &lt;= MR, nr &lt;= NR. Partial tiles
    /// run <see cref="DirectTile"/> on the panels (masked edges; one vector per row when nr &lt;= 8, as
    /// for the 8 extra columns of a 24-wide matrix), or, without AVX2, a full tile on the stack and
    /// the scalar combine.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)] // hot from the first call; no tier-0 code
    public static void Tile(int kc, float* a, float* b, float* c, long ldc, int mr, int nr, float alpha, float beta)
    {
        if (mr == MR && nr == NR)
        {
            if (UsesAvx2) Avx2Tile(kc, a, b, c, ldc, alpha, beta);
            else PortableTile(kc, a, b, c, ldc, alpha, beta);
            return;
        }
        if (UsesAvx2)
        {
            // Packed A: element (i, p) at a[p * MR + i]; packed B: row p at b + p * NR.
            DirectTile(kc, a, 1, MR, b, NR, c, ldc, mr, nr, alpha, beta);
            return;
        }
        float* t = stackalloc float[MR * NR];
        PortableTile(kc, a, b, t, NR, 1f, 0f);
        for (int i = 0; i < mr; i++)
        {
            float* row = c + i * ldc, acc = t + i * NR;
            if (beta == 0f) for (int j = 0; j < nr; j++) row[j] = alpha * acc[j];
            else for (int j = 0; j < nr; j++) row[j] = alpha * acc[j] + beta * row[j];
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    static void Avx2Tile(int kc, float* a, float* b, float* c, long ldc, float alpha, float beta)
    {
        Vector256<float> c00 = default, c01 = default, c10 = default, c11 = default, c20 = default, c21 = default;
        Vector256<float> c30 = default, c31 = default, c40 = default, c41 = default, c50 = default, c51 = default;
        for (int k = 0; k < kc; k++)
        {
            var b0 = Avx.LoadVector256(b);
            var b1 = Avx.LoadVector256(b + 8);
            var x = Vector256.Create(a[0]);
            c00 = Fma.MultiplyAdd(x, b0, c00);
            c01 = Fma.MultiplyAdd(x, b1, c01);
            x = Vector256.Create(a[1]);
            c10 = Fma.MultiplyAdd(x, b0, c10);
            c11 = Fma.MultiplyAdd(x, b1, c11);
            x = Vector256.Create(a[2]);
            c20 = Fma.MultiplyAdd(x, b0, c20);
            c21 = Fma.MultiplyAdd(x, b1, c21);
            x = Vector256.Create(a[3]);
            c30 = Fma.MultiplyAdd(x, b0, c30);
            c31 = Fma.MultiplyAdd(x, b1, c31);
            x = Vector256.Create(a[4]);
            c40 = Fma.MultiplyAdd(x, b0, c40);
            c41 = Fma.MultiplyAdd(x, b1, c41);
            x = Vector256.Create(a[5]);
            c50 = Fma.MultiplyAdd(x, b0, c50);
            c51 = Fma.MultiplyAdd(x, b1, c51);
            a += MR;
            b += NR;
        }
        var va = Vector256.Create(alpha);
        if (beta == 0f)
        {
            Store0(c, va, c00, c01);
            Store0(c + ldc, va, c10, c11);
            Store0(c + 2 * ldc, va, c20, c21);
            Store0(c + 3 * ldc, va, c30, c31);
            Store0(c + 4 * ldc, va, c40, c41);
            Store0(c + 5 * ldc, va, c50, c51);
        }
        else
        {
            var vb = Vector256.Create(beta);
            Store(c, va, vb, c00, c01);
            Store(c + ldc, va, vb, c10, c11);
            Store(c + 2 * ldc, va, vb, c20, c21);
            Store(c + 3 * ldc, va, vb, c30, c31);
            Store(c + 4 * ldc, va, vb, c40, c41);
            Store(c + 5 * ldc, va, vb, c50, c51);
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static void Store0(float* c, Vector256<float> alpha, Vector256<float> lo, Vector256<float> hi)
    {
        Avx.Store(c, Avx.Multiply(alpha, lo));
        Avx.Store(c + 8, Avx.Multiply(alpha, hi));
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static void Store(float* c, Vector256<float> alpha, Vector256<float> beta, Vector256<float> lo, Vector256<float> hi)
    {
        Avx.Store(c, Avx.Add(Avx.Multiply(alpha, lo), Avx.Multiply(beta, Avx.LoadVector256(c))));
        Avx.Store(c + 8, Avx.Add(Avx.Multiply(alpha, hi), Avx.Multiply(beta, Avx.LoadVector256(c + 8))));
    }

    /// <summary>
    /// The direct (unpacked) tile for small products: C[0..mr, 0..nr] from op(A) read in place
    /// (element (i, p) at a[i * rowStride + p * kStride], so either transpose) and a row-major B
    /// read in place (row p at b + p * ldb). Same sums as <see cref="Avx2Tile"/> (one FMA per k in
    /// order, then alpha * acc + beta * C), so both paths give bitwise equal results. Columns past
    /// nr are neither read (masked loads) nor written (masked stores); rows past mr repeat row 0
    /// and are not stored. nr &lt;= 8 runs on one vector per row. AVX2 + FMA only.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void DirectTile(int kc, float* a, long rowStride, long kStride, float* b, long ldb, float* c, long ldc, int mr, int nr, float alpha, float beta)
    {
        float* a0 = a, a1 = mr > 1 ? a + rowStride : a, a2 = mr > 2 ? a + 2 * rowStride : a;
        float* a3 = mr > 3 ? a + 3 * rowStride : a, a4 = mr > 4 ? a + 4 * rowStride : a, a5 = mr > 5 ? a + 5 * rowStride : a;
        var mask0 = LaneMask(nr);
        if (nr <= 8)
        {
            Vector256<float> r0 = default, r1 = default, r2 = default, r3 = default, r4 = default, r5 = default;
            long off = 0;
            for (int k = 0; k < kc; k++, b += ldb, off += kStride)
            {
                var b0 = Avx.MaskLoad(b, mask0);
                r0 = Fma.MultiplyAdd(Vector256.Create(a0[off]), b0, r0);
                r1 = Fma.MultiplyAdd(Vector256.Create(a1[off]), b0, r1);
                r2 = Fma.MultiplyAdd(Vector256.Create(a2[off]), b0, r2);
                r3 = Fma.MultiplyAdd(Vector256.Create(a3[off]), b0, r3);
                r4 = Fma.MultiplyAdd(Vector256.Create(a4[off]), b0, r4);
                r5 = Fma.MultiplyAdd(Vector256.Create(a5[off]), b0, r5);
            }
            var acc = stackalloc Vector256<float>[6] { r0, r1, r2, r3, r4, r5 };
            for (int i = 0; i < mr; i++) StoreMasked(c + i * ldc, mask0, acc[i], alpha, beta);
            return;
        }
        var mask1 = LaneMask(nr - 8);
        {
            Vector256<float> c00 = default, c01 = default, c10 = default, c11 = default, c20 = default, c21 = default;
            Vector256<float> c30 = default, c31 = default, c40 = default, c41 = default, c50 = default, c51 = default;
            long off = 0;
            bool full = nr == NR;
            for (int k = 0; k < kc; k++, b += ldb, off += kStride)
            {
                var b0 = Avx.LoadVector256(b);
                var b1 = full ? Avx.LoadVector256(b + 8) : Avx.MaskLoad(b + 8, mask1);
                var x = Vector256.Create(a0[off]);
                c00 = Fma.MultiplyAdd(x, b0, c00);
                c01 = Fma.MultiplyAdd(x, b1, c01);
                x = Vector256.Create(a1[off]);
                c10 = Fma.MultiplyAdd(x, b0, c10);
                c11 = Fma.MultiplyAdd(x, b1, c11);
                x = Vector256.Create(a2[off]);
                c20 = Fma.MultiplyAdd(x, b0, c20);
                c21 = Fma.MultiplyAdd(x, b1, c21);
                x = Vector256.Create(a3[off]);
                c30 = Fma.MultiplyAdd(x, b0, c30);
                c31 = Fma.MultiplyAdd(x, b1, c31);
                x = Vector256.Create(a4[off]);
                c40 = Fma.MultiplyAdd(x, b0, c40);
                c41 = Fma.MultiplyAdd(x, b1, c41);
                x = Vector256.Create(a5[off]);
                c50 = Fma.MultiplyAdd(x, b0, c50);
                c51 = Fma.MultiplyAdd(x, b1, c51);
            }
            var lo = stackalloc Vector256<float>[6] { c00, c10, c20, c30, c40, c50 };
            var hi = stackalloc Vector256<float>[6] { c01, c11, c21, c31, c41, c51 };
            for (int i = 0; i < mr; i++)
            {
                StoreMasked(c + i * ldc, LaneMask(8), lo[i], alpha, beta);
                StoreMasked(c + i * ldc + 8, mask1, hi[i], alpha, beta);
            }
        }
    }

    /// <summary>All-ones lanes 0..n-1 (n clamped to 0..8) for masked loads and stores.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static Vector256<float> LaneMask(int n) =>
        Vector256.LessThan(Vector256.Create(0, 1, 2, 3, 4, 5, 6, 7), Vector256.Create(n)).AsSingle();

    /// <summary>c[lanes] = alpha * acc (beta 0: C not read) or alpha * acc + beta * c, as <see cref="Store0"/> and <see cref="Store"/>.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static void StoreMasked(float* c, Vector256<float> mask, Vector256<float> acc, float alpha, float beta)
    {
        var v = Avx.Multiply(Vector256.Create(alpha), acc);
        if (beta != 0f) v = Avx.Add(v, Avx.Multiply(Vector256.Create(beta), Avx.MaskLoad(c, mask)));
        Avx.MaskStore(c, mask, v);
    }

    /// <summary>Any ISA: the same tile with one unfused multiply and add per step.</summary>
    static void PortableTile(int kc, float* a, float* b, float* c, long ldc, float alpha, float beta)
    {
        float* acc = stackalloc float[MR * NR];
        new Span<float>(acc, MR * NR).Clear();
        for (int k = 0; k < kc; k++, a += MR, b += NR)
            for (int i = 0; i < MR; i++)
            {
                float x = a[i];
                float* row = acc + i * NR;
                for (int j = 0; j < NR; j++) row[j] += x * b[j];
            }
        for (int i = 0; i < MR; i++)
        {
            float* row = c + i * ldc, s = acc + i * NR;
            if (beta == 0f) for (int j = 0; j < NR; j++) row[j] = alpha * s[j];
            else for (int j = 0; j < NR; j++) row[j] = alpha * s[j] + beta * row[j];
        }
    }
}

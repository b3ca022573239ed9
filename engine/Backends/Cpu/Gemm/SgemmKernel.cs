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
    /// go through a full tile on the stack and the scalar combine.
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
        float* t = stackalloc float[MR * NR];
        if (UsesAvx2) Avx2Tile(kc, a, b, t, NR, 1f, 0f);
        else PortableTile(kc, a, b, t, NR, 1f, 0f);
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

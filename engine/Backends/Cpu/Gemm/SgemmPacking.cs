using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace Sbp.Backends.Cpu.Gemm;

/// <summary>
/// Copies blocks of op(A) and op(B) into the layouts the micro-kernel streams: A as micro-panels
/// of <see cref="SgemmKernel.MR"/> rows (for each k, MR consecutive values), B as micro-panels of
/// <see cref="SgemmKernel.NR"/> columns (for each k, NR consecutive values). Rows or columns past
/// the matrix edge are zero, so edge tiles run the same kernel.
/// </summary>
static unsafe class SgemmPacking
{
    const int MR = SgemmKernel.MR, NR = SgemmKernel.NR;

    /// <summary>
    /// Packs op(A)[i0 .. i0 + mc, p0 .. p0 + kc] of a row-major op(A) [M, K]: A is [M, K] in memory,
    /// or [K, M] when transposed.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)] // hot from the first call; no tier-0 code
    public static void PackA(float* a, bool trans, int m, int k, int i0, int mc, int p0, int kc, float* dst)
    {
        for (int ir = 0; ir < mc; ir += MR, dst += MR * kc)
        {
            int mr = Math.Min(MR, mc - ir);
            if (trans)
            {
                // op(A)(i, p) = A[p * M + i]: each k holds mr consecutive values.
                float* src = a + (long)p0 * m + i0 + ir;
                if (mr == MR)
                    for (int p = 0; p < kc; p++, src += m)
                    {
                        float* d = dst + p * MR;
                        d[0] = src[0]; d[1] = src[1]; d[2] = src[2]; d[3] = src[3]; d[4] = src[4]; d[5] = src[5];
                    }
                else
                    for (int p = 0; p < kc; p++, src += m)
                    {
                        float* d = dst + p * MR;
                        int r = 0;
                        for (; r < mr; r++) d[r] = src[r];
                        for (; r < MR; r++) d[r] = 0f;
                    }
            }
            else
            {
                // op(A)(i, p) = A[i * K + p]: rows are contiguous in p. Full panels: 8 k at a time by
                // an 8x8 transpose (rows 6 and 7 zero); each 8-float store overlaps the next by 2.
                int p8 = 0;
                if (mr == MR && Avx.IsSupported)
                {
                    float* r0 = a + (long)(i0 + ir) * k + p0;
                    for (; p8 + 8 <= kc; p8 += 8)
                        Transpose8(r0 + p8, k, MR, dst + p8 * MR, MR);
                }
                if (p8 == kc) continue;
                for (int r = 0; r < MR; r++)
                {
                    float* d = dst + r;
                    if (r >= mr)
                    {
                        for (int p = p8; p < kc; p++) d[p * MR] = 0f;
                        continue;
                    }
                    float* src = a + (long)(i0 + ir + r) * k + p0;
                    for (int p = p8; p < kc; p++) d[p * MR] = src[p];
                }
            }
        }
    }

    /// <summary>
    /// Packs op(B)[p0 .. p0 + kc, j0 .. j0 + nc] of a row-major op(B) [K, N]: B is [K, N] in memory,
    /// or [N, K] when transposed.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)] // hot from the first call; no tier-0 code
    public static void PackB(float* b, bool trans, int k, int n, int p0, int kc, int j0, int nc, float* dst)
    {
        for (int jr = 0; jr < nc; jr += NR, dst += NR * kc)
        {
            int nr = Math.Min(NR, nc - jr);
            if (!trans)
            {
                // op(B)(p, j) = B[p * N + j]: each k holds nr consecutive values.
                float* src = b + (long)p0 * n + j0 + jr;
                if (nr == NR && Vector256.IsHardwareAccelerated)
                    for (int p = 0; p < kc; p++, src += n)
                    {
                        Vector256.Store(Vector256.Load(src), dst + p * NR);
                        Vector256.Store(Vector256.Load(src + 8), dst + p * NR + 8);
                    }
                else
                    for (int p = 0; p < kc; p++, src += n)
                    {
                        float* d = dst + p * NR;
                        int c = 0;
                        for (; c < nr; c++) d[c] = src[c];
                        for (; c < NR; c++) d[c] = 0f;
                    }
            }
            else
            {
                // op(B)(p, j) = B[j * K + p]: column j of op(B) is a contiguous row of B. Full
                // panels: 8 k at a time by two 8x8 transposes (columns 0-7 and 8-15).
                int p8 = 0;
                if (nr == NR && Avx.IsSupported)
                {
                    float* r0 = b + (long)(j0 + jr) * k + p0;
                    for (; p8 + 8 <= kc; p8 += 8)
                    {
                        Transpose8(r0 + p8, k, 8, dst + p8 * NR, NR);
                        Transpose8(r0 + 8L * k + p8, k, 8, dst + p8 * NR + 8, NR);
                    }
                }
                if (p8 == kc) continue;
                for (int c = 0; c < NR; c++)
                {
                    float* d = dst + c;
                    if (c >= nr)
                    {
                        for (int p = p8; p < kc; p++) d[p * NR] = 0f;
                        continue;
                    }
                    float* src = b + (long)(j0 + jr + c) * k + p0;
                    for (int p = p8; p < kc; p++) d[p * NR] = src[p];
                }
            }
        }
    }

    /// <summary>Slack floats after a packed A block: the overlapping 8-float stores of the last panel run 2 past it.</summary>
    public const int Slack = 16;

    /// <summary>
    /// Transposes 8 floats of each of <paramref name="rows"/> source rows (row stride ld; rows past
    /// it read as 0): for each of the 8 columns j, stores [row0[j], ..., row7[j]] (8 floats) at
    /// dst + j * dstStep.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static void Transpose8(float* src, long ld, int rows, float* dst, int dstStep) =>
        Transpose8(Avx.LoadVector256(src), Avx.LoadVector256(src + ld), Avx.LoadVector256(src + 2 * ld), Avx.LoadVector256(src + 3 * ld),
            Avx.LoadVector256(src + 4 * ld), Avx.LoadVector256(src + 5 * ld),
            rows > 6 ? Avx.LoadVector256(src + 6 * ld) : Vector256<float>.Zero, rows > 7 ? Avx.LoadVector256(src + 7 * ld) : Vector256<float>.Zero,
            dst, dstStep);

    /// <summary><see cref="Transpose8(float*, long, int, float*, int)"/> of bfloat16 rows, each widened (exactly) as it is loaded.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static void Transpose8(ushort* src, long ld, float* dst, int dstStep) =>
        Transpose8(Bf16(src), Bf16(src + ld), Bf16(src + 2 * ld), Bf16(src + 3 * ld), Bf16(src + 4 * ld), Bf16(src + 5 * ld),
            Vector256<float>.Zero, Vector256<float>.Zero, dst, dstStep);

    /// <summary>8 bfloat16 values as floats: each zero-extended and shifted into the upper half.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static Vector256<float> Bf16(ushort* p) => Avx2.ShiftLeftLogical(Avx2.ConvertToVector256Int32(Sse2.LoadVector128(p)), 16).AsSingle();

    /// <summary>
    /// Packs op(A)[i0 .. i0 + mc, p0 .. p0 + kc] of a row-major bfloat16 A [M, K] (not transposed) as <see cref="PackA"/>
    /// packs its widening: each 6 x 8 block widened in registers as it is transposed (no Float32 scratch copy).
    /// </summary>
    public static void PackABFloat16(ushort* a, int k, int i0, int mc, int p0, int kc, float* dst)
    {
        for (int ir = 0; ir < mc; ir += MR, dst += MR * kc)
        {
            int mr = Math.Min(MR, mc - ir), p8 = 0;
            if (mr == MR)
            {
                ushort* r0 = a + (long)(i0 + ir) * k + p0;
                for (; p8 + 8 <= kc; p8 += 8) Transpose8(r0 + p8, k, dst + p8 * MR, MR);
            }
            if (p8 == kc) continue;
            for (int r = 0; r < MR; r++)
            {
                float* d = dst + r;
                ushort* src = a + (long)(i0 + ir + r) * k + p0;
                for (int p = p8; p < kc; p++) d[p * MR] = r < mr ? Sbp.Tensors.HalfPrecision.FromBFloat16(src[p]) : 0f;
            }
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static void Transpose8(Vector256<float> r0, Vector256<float> r1, Vector256<float> r2, Vector256<float> r3, Vector256<float> r4,
        Vector256<float> r5, Vector256<float> r6, Vector256<float> r7, float* dst, int dstStep)
    {
        var t0 = Avx.UnpackLow(r0, r1);
        var t1 = Avx.UnpackHigh(r0, r1);
        var t2 = Avx.UnpackLow(r2, r3);
        var t3 = Avx.UnpackHigh(r2, r3);
        var t4 = Avx.UnpackLow(r4, r5);
        var t5 = Avx.UnpackHigh(r4, r5);
        var t6 = Avx.UnpackLow(r6, r7);
        var t7 = Avx.UnpackHigh(r6, r7);
        var s0 = Avx.Shuffle(t0, t2, 0x44);
        var s1 = Avx.Shuffle(t0, t2, 0xEE);
        var s2 = Avx.Shuffle(t1, t3, 0x44);
        var s3 = Avx.Shuffle(t1, t3, 0xEE);
        var s4 = Avx.Shuffle(t4, t6, 0x44);
        var s5 = Avx.Shuffle(t4, t6, 0xEE);
        var s6 = Avx.Shuffle(t5, t7, 0x44);
        var s7 = Avx.Shuffle(t5, t7, 0xEE);
        Avx.Store(dst, Avx.Permute2x128(s0, s4, 0x20));
        Avx.Store(dst + dstStep, Avx.Permute2x128(s1, s5, 0x20));
        Avx.Store(dst + 2 * dstStep, Avx.Permute2x128(s2, s6, 0x20));
        Avx.Store(dst + 3 * dstStep, Avx.Permute2x128(s3, s7, 0x20));
        Avx.Store(dst + 4 * dstStep, Avx.Permute2x128(s0, s4, 0x31));
        Avx.Store(dst + 5 * dstStep, Avx.Permute2x128(s1, s5, 0x31));
        Avx.Store(dst + 6 * dstStep, Avx.Permute2x128(s2, s6, 0x31));
        Avx.Store(dst + 7 * dstStep, Avx.Permute2x128(s3, s7, 0x31));
    }
}

using Sbp.Tensors;

namespace Sbp.CudaSim;

// Reference cuBLAS: cublasSgemmStridedBatched's documented semantics, column-major.
internal sealed partial class SimCudaApi
{
    /// <summary>
    /// For each batch entry p: C_p = alpha op(A_p) op(B_p) + beta C_p with column-major matrices,
    /// op(A) m x k (A stored k x m with ld lda when transposed), op(B) k x n, C m x n with ld ldc;
    /// X_p = X + p strideX (a stride of 0 reuses one matrix). With beta = 0, C is not read (it may
    /// hold NaN). Checks the arguments as cuBLAS does (CUBLAS_STATUS_INVALID_VALUE).
    /// Accumulates in float64 per element, so it is an exact-as-possible reference. tf32 (GemmEx with
    /// COMPUTE_32F_FAST_TF32) rounds A and B to TF32 (10 mantissa bits, round to nearest) first.
    /// </summary>
    public void SgemmStridedBatched(bool transA, bool transB, int m, int n, int k, float alpha,
        ulong a, int lda, long strideA, ulong b, int ldb, long strideB, float beta, ulong c, int ldc, long strideC, int batch, bool tf32)
    {
        string fn = tf32 ? "cublasGemmStridedBatchedEx" : "cublasSgemmStridedBatched";
        Called(tf32 ? fn : batch == 1 ? "cublasSgemm_v2" : fn);
        Gemm(fn, transA, transB, m, n, k, alpha, DType.Float32, a, lda, strideA, b, ldb, strideB, beta, DType.Float32, c, ldc, strideC, batch, tf32);
    }

    /// <summary>cublasGemmStridedBatchedEx with 16-bit A and B and CUBLAS_COMPUTE_32F: as <see cref="SgemmStridedBatched"/> on the
    /// exact widenings of A and B; a 16-bit C is read widened and written rounded to nearest even.</summary>
    public void GemmHalfStridedBatched(bool transA, bool transB, int m, int n, int k, float alpha, DType abType,
        ulong a, int lda, long strideA, ulong b, int ldb, long strideB, float beta, DType cType, ulong c, int ldc, long strideC, int batch)
    {
        const string fn = "cublasGemmStridedBatchedEx";
        Called(fn);
        if (!abType.Is16Bit() || (cType != DType.Float32 && cType != abType))
            throw CublasError(fn, 15, "CUBLAS_STATUS_NOT_SUPPORTED", $"the functionality requested is not supported (A/B {abType}, C {cType} with CUBLAS_COMPUTE_32F)");
        Gemm(fn, transA, transB, m, n, k, alpha, abType, a, lda, strideA, b, ldb, strideB, beta, cType, c, ldc, strideC, batch, tf32: false);
    }

    void Gemm(string fn, bool transA, bool transB, int m, int n, int k, float alpha, DType abType,
        ulong a, int lda, long strideA, ulong b, int ldb, long strideB, float beta, DType cType, ulong c, int ldc, long strideC, int batch, bool tf32)
    {
        if (m < 0 || n < 0 || k < 0 || batch < 0 || lda < Math.Max(1, transA ? k : m) || ldb < Math.Max(1, transB ? n : k) || ldc < Math.Max(1, m))
            throw CublasError(fn, 7, "CUBLAS_STATUS_INVALID_VALUE",
                $"an invalid value was used as an argument (m {m}, n {n}, k {k}, lda {lda}, ldb {ldb}, ldc {ldc}, batch {batch}, transA {transA}, transB {transB})");
        if (m == 0 || n == 0 || batch == 0) return;
        EnsureCublasWorkspace(fn);
        // Extents in elements: the last column's start plus its length.
        long aCount = k == 0 ? 0 : transA ? (long)lda * (m - 1) + k : (long)lda * (k - 1) + m;
        long bCount = k == 0 ? 0 : transB ? (long)ldb * (k - 1) + n : (long)ldb * (n - 1) + k;
        long cCount = (long)ldc * (n - 1) + m;
        ulong ab = (ulong)abType.Size(), cb = (ulong)cType.Size();
        lock (_gate)
        {
            for (int p = 0; p < batch; p++)
            {
                var A = Read(a + (ulong)(p * strideA) * ab, aCount, abType);
                var B = Read(b + (ulong)(p * strideB) * ab, bCount, abType);
                if (tf32)
                {
                    RoundToTf32(A);
                    RoundToTf32(B);
                }
                ulong cp = c + (ulong)(p * strideC) * cb;
                var C = beta == 0f ? new float[cCount] : Read(cp, cCount, cType);
                if (beta == 0f && cCount > 0) Read(cp, cCount, cType);   // bounds check only
                for (int j = 0; j < n; j++)
                    for (int i = 0; i < m; i++)
                    {
                        double sum = 0;
                        for (int l = 0; l < k; l++)
                        {
                            double av = transA ? A[(long)i * lda + l] : A[(long)l * lda + i];
                            double bv = transB ? B[(long)l * ldb + j] : B[(long)j * ldb + l];
                            sum += av * bv;
                        }
                        long at = (long)j * ldc + i;
                        C[at] = (float)(alpha * sum + (beta == 0f ? 0.0 : (double)beta * C[at]));
                    }
                // Elements between columns (ldc > m) are left as they were.
                if (beta == 0f && ldc != m)
                {
                    var old = Read(cp, cCount, cType);
                    for (int j = 0; j < n; j++)
                        for (int i = m; i < ldc && (long)j * ldc + i < cCount; i++) C[(long)j * ldc + i] = old[(long)j * ldc + i];
                }
                Write(cp, C, cType);
            }
        }
    }

    /// <summary>Float32 values of device memory holding <paramref name="dtype"/> (16-bit ones widened exactly).</summary>
    float[] Read(ulong address, long count, DType dtype)
    {
        if (dtype == DType.Float32) return ReadFloats(address, count);
        var bits = new ushort[count];
        if (count > 0) Memory.Read<ushort>(address, bits);
        var values = new float[count];
        HalfPrecision.Widen(bits, values, dtype);
        return values;
    }

    void Write(ulong address, float[] values, DType dtype)
    {
        if (dtype == DType.Float32)
        {
            WriteFloats(address, values);
            return;
        }
        var bits = new ushort[values.Length];
        HalfPrecision.Narrow(values, bits, dtype);
        if (bits.Length > 0) Memory.Write<ushort>(address, bits);
    }

    /// <summary>Keeps 10 of float32's 23 mantissa bits, rounding to nearest even (finite values).</summary>
    static void RoundToTf32(float[] values)
    {
        for (int i = 0; i < values.Length; i++)
        {
            uint bits = BitConverter.SingleToUInt32Bits(values[i]);
            if ((bits & 0x7F80_0000) == 0x7F80_0000) continue;
            bits += 0x0FFF + ((bits >> 13) & 1);
            values[i] = BitConverter.UInt32BitsToSingle(bits & 0xFFFF_E000);
        }
    }

    /// <summary>Bytes of device memory cuBLAS takes for itself on its first GEMM (0: none, the default).</summary>
    internal long CublasWorkspaceBytes { get; init; }

    ulong _cublasWorkspace;

    /// <summary>
    /// cuBLAS allocates its workspace with cudaMalloc, outside the engine's pool, the first time it needs it; when the
    /// device is full (the pool's cache included) it fails with CUBLAS_STATUS_ALLOC_FAILED, as the real one does.
    /// </summary>
    void EnsureCublasWorkspace(string fn)
    {
        if (CublasWorkspaceBytes == 0 || _cublasWorkspace != 0) return;
        ulong p = Allocate(CublasWorkspaceBytes);
        if (p == 0)
            throw CublasError(fn, 3, "CUBLAS_STATUS_ALLOC_FAILED",
                $"resource allocation failed (its {CublasWorkspaceBytes}-byte workspace does not fit the device's {MemoryInfo().Free} free bytes)");
        _cublasWorkspace = p;
    }
}

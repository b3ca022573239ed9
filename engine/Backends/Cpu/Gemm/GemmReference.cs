namespace Sbp.Backends.Cpu.Gemm;

/// <summary>
/// The plain triple loop (float64 sums), one output element at a time: what the fast SGEMM is
/// tested against. Same contract as <see cref="SgemmDriver.Run"/>.
/// </summary>
static unsafe class GemmReference
{
    public static void Run(in GemmSpec g, float* a, float* b, float* c)
    {
        for (int e = 0; e < g.Batch; e++)
        {
            float* A = a + e * g.StrideA, B = b + e * g.StrideB, C = c + e * g.StrideC;
            for (int i = 0; i < g.M; i++)
                for (int j = 0; j < g.N; j++)
                {
                    double sum = 0;
                    for (int p = 0; p < g.K; p++)
                    {
                        float x = g.TransA ? A[(long)p * g.M + i] : A[(long)i * g.K + p];
                        float y = g.TransB ? B[(long)j * g.K + p] : B[(long)p * g.N + j];
                        sum += (double)x * y;
                    }
                    long at = (long)i * g.N + j;
                    C[at] = g.Beta == 0f ? (float)(g.Alpha * sum) : (float)(g.Alpha * sum + (double)g.Beta * C[at]);
                }
        }
    }
}

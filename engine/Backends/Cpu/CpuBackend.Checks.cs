using Sbp.Tensors;

namespace Sbp.Backends.Cpu;

// A user's values checked at once: the CPU has them in host memory (IBackend.Checks.cs).
public sealed unsafe partial class CpuBackend
{
    public void CheckIndices(Tensor indices, int size, CheckFailure failure)
    {
        int* idx = indices.I;
        for (long i = 0; i < indices.Numel; i++)
            if ((uint)idx[i] >= (uint)size) throw failure(i, idx[i], "");
    }

    public void CheckAbove(Tensor x, float floor, CheckFailure failure)
    {
        float* v = x.F;
        for (long i = 0; i < x.Numel; i++)
            if (!(v[i] > floor)) throw failure(i, BitConverter.SingleToInt32Bits(v[i]), "");
    }
}

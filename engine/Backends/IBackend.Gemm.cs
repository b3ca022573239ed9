using Sbp.Tensors;

namespace Sbp.Backends;

// Matrix products.
public partial interface IBackend
{
    void Gemm(in GemmSpec spec, Tensor a, Tensor b, Tensor c);
}

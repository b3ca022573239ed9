namespace Sbp.Memory;

/// <summary>What a block of device memory is for. Every byte in use is counted under exactly one category.</summary>
public enum MemoryCategory
{
    /// <summary>Model weights.</summary>
    Parameter,
    /// <summary>Accumulated gradients of parameters (and of leaf tensors that require grad).</summary>
    Gradient,
    /// <summary>Optimizer state such as momentum and Adam moments.</summary>
    OptimizerState,
    /// <summary>Tensors held by an autograd tape for backward.</summary>
    SavedActivation,
    /// <summary>Scratch buffers of kernels (GEMM packing, im2col, library workspaces).</summary>
    Workspace,
    /// <summary>Everything else: op outputs, inputs, intermediate gradients.</summary>
    Temporary,
}

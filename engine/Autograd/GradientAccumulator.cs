using Sbp.Backends;
using Sbp.Memory;
using Sbp.Tensors;

namespace Sbp.Autograd;

/// <summary>
/// The gradients of one backward pass: per tensor the sum of what its consumers handed back, leaves'
/// gradients accumulated into <see cref="Tensor.Grad"/>, and (for a region re-run) one input's
/// gradient captured instead of stored. A gradient that comes back in a compact form (SBP) for a tensor
/// whose gradient is dense is added at the form's positions: scattered accumulation.
/// </summary>
internal sealed class GradientAccumulator(Tape tape, long captureId) : IDisposable
{
    readonly Dictionary<long, Tensor> _grads = [];

    /// <summary>The captured input's gradient, if any (owned by the caller once taken).</summary>
    public Tensor? Captured { get; private set; }

    /// <summary>Gradients still held (of tensors whose producer has not run backward).</summary>
    public int Pending => _grads.Count;

    /// <summary>Stores the loss's gradient.</summary>
    public void Seed(Tensor loss, Tensor grad) => _grads[loss.Id] = grad;

    /// <summary>Takes the summed gradient of a node's output, if any reached it.</summary>
    public bool TryTake(long outputId, out Tensor grad) => _grads.Remove(outputId, out grad!);

    /// <summary>Gives up the captured gradient (the caller owns it now).</summary>
    public Tensor? TakeCaptured()
    {
        var c = Captured;
        Captured = null;
        return c;
    }

    /// <summary>
    /// Adds <paramref name="grad"/> (owned from now on) to the gradient of <paramref name="input"/>; in the
    /// compact form <paramref name="form"/> when it is not the form the input's own gradient has.
    /// </summary>
    public void Add(Tensor input, Tensor grad, ICompactForm? form)
    {
        try
        {
            // A 16-bit gradient (a user rule may give one) is summed in Float32.
            if (grad.DType.Is16Bit())
            {
                var wide = Ops.CastTo("grad.float32", grad, DType.Float32).DetachFromScope();
                grad.Dispose();
                grad = wide;
            }
            AddOwned(input, grad, form);
        }
        catch
        {
            // A failed allocation (out of memory) must not leak the gradient unless it was already stored.
            if (!ReferenceEquals(grad, Captured) && !_grads.Values.Contains(grad)) grad.Dispose();
            throw;
        }
    }

    void AddOwned(Tensor input, Tensor grad, ICompactForm? form)
    {
        bool scatter = form is not null && !Equals(tape.Extension?.CompactFormOf(input), form);
        if (input.Id == captureId)
        {
            if (scatter) grad = Scattered(grad, form!, input.Shape);
            if (Captured is null) Captured = grad;
            else
            {
                Captured.Backend.Binary(BinaryOp.Add, Captured, grad, Captured);
                grad.Dispose();
            }
            return;
        }
        if (input.IsLeaf)
        {
            if (input.Grad is null)
            {
                var g = (scatter ? Tensor.Zeros(input.Shape, input.Device, category: MemoryCategory.Gradient)
                                 : Tensor.Empty(input.Shape, input.Device, DType.Float32, MemoryCategory.Gradient)).DetachFromScope();
                try
                {
                    if (scatter) form!.AddInto(tape, g, grad);
                    else g.Backend.Copy(grad, g);
                }
                catch
                {
                    g.Dispose();
                    throw;
                }
                input.Grad = g;
            }
            else if (scatter) form!.AddInto(tape, input.Grad, grad);
            else input.Backend.Binary(BinaryOp.Add, input.Grad, grad, input.Grad);
            grad.Dispose();
            return;
        }
        if (!_grads.TryGetValue(input.Id, out var existing))
        {
            _grads[input.Id] = scatter ? Scattered(grad, form!, input.Shape) : grad;
            return;
        }
        if (existing.Block.RefCount != 1)
        {
            // Shared memory (a view handed to two inputs): copy before adding in place.
            var copy = Tensor.Empty(existing.Shape, existing.Device).DetachFromScope();
            copy.Backend.Copy(existing, copy);
            existing.Dispose();
            _grads[input.Id] = existing = copy;
        }
        if (scatter) form!.AddInto(tape, existing, grad);
        else existing.Backend.Binary(BinaryOp.Add, existing, grad, existing);
        grad.Dispose();
    }

    /// <summary>A dense gradient of <paramref name="full"/> shape: zeros with the compact gradient at the form's positions.</summary>
    Tensor Scattered(Tensor compact, ICompactForm form, Shape full)
    {
        Tensor dense;
        using (OpLabel.Push("sbp.scatter"))
            dense = Tensor.Zeros(full, compact.Device).DetachFromScope();
        try { form.AddInto(tape, dense, compact); }
        catch
        {
            dense.Dispose();
            throw;
        }
        compact.Dispose();
        return dense;
    }

    /// <summary>Frees every gradient still held (and a captured one not taken).</summary>
    public void Dispose()
    {
        foreach (var g in _grads.Values) g.Dispose();
        _grads.Clear();
        Captured?.Dispose();
        Captured = null;
    }
}

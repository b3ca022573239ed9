using Sbp.Tensors;

namespace Sbp.Autograd;

/// <summary>
/// A compact form of a tensor (SBP: its kept positions along one axis). A node input whose gradient comes back
/// in a compact form is added into the dense gradient at the form's positions; a saved tensor read in a compact
/// form is gathered to it. Forms compare with <see cref="object.Equals(object)"/>.
/// </summary>
internal interface ICompactForm
{
    /// <summary>The compact shape of a tensor of <paramref name="full"/> shape.</summary>
    Shape CompactShape(Shape full);

    /// <summary>dense += compact at the form's positions (the scatter-add kernel).</summary>
    void AddInto(Tape tape, Tensor dense, Tensor compact);

    /// <summary>A new tensor: <paramref name="full"/> at the form's positions (the gather kernel).</summary>
    Tensor Gather(Tape tape, Tensor full);
}

using Sbp.Tensors;

namespace Sbp.Nn;

/// <summary>GELU (<see cref="Ops.Gelu"/>): the exact erf form, or the tanh approximation.</summary>
public sealed class Gelu(bool tanhApproximation = false, Device? device = null) : Module(device)
{
    public bool TanhApproximation { get; } = tanhApproximation;
    public override Tensor Forward(Tensor x) => Ops.Gelu(x, TanhApproximation);
}

/// <summary>ReLU (<see cref="Ops.Relu"/>).</summary>
public sealed class Relu(Device? device = null) : Module(device)
{
    public override Tensor Forward(Tensor x) => Ops.Relu(x);
}

/// <summary>Returns its input as a free view (the caller may dispose it without touching the input).</summary>
public sealed class Identity(Device? device = null) : Module(device)
{
    public override Tensor Forward(Tensor x) => IdentityView(x);
}

/// <summary>Any function of one tensor as a parameter-free module (e.g. <c>new Lambda(x => Ops.Gelu(x, true))</c>).</summary>
public sealed class Lambda(Func<Tensor, Tensor> function, Device? device = null) : Module(device)
{
    readonly Func<Tensor, Tensor> _function = function ?? throw new ArgumentNullException(nameof(function));

    public override Tensor Forward(Tensor x)
    {
        var y = _function(x);
        return ReferenceEquals(y, x) ? IdentityView(x) : y;
    }
}

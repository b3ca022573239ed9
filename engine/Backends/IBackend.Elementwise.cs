using Sbp.Tensors;

namespace Sbp.Backends;

// Elementwise ops: binary with broadcasting, unary, activations and their backward, bias + activation.
public partial interface IBackend
{
    /// <summary>
    /// c = a op b with a and b broadcast to c's shape. c may alias a or b when shapes equal. Under autocast one of a and b may
    /// be 16-bit with c's shape (c Float32): read as its exact widening.
    /// </summary>
    void Binary(BinaryOp op, Tensor a, Tensor b, Tensor c);

    /// <summary>y = op(x). x and y Float32, or, for Relu, Gelu and GeluTanh (autocast), both of one 16-bit type (computed in Float32, rounded once).</summary>
    void Unary(UnaryOp op, Tensor x, Tensor y, float alpha = 0f);

    /// <summary>dx = dy * f'(x) for Relu, Gelu and GeluTanh; x may be 16-bit (read widened), dy and dx are Float32.</summary>
    void ActivationBackward(UnaryOp op, Tensor x, Tensor dy, Tensor dx);

    /// <summary>
    /// y = f(x + bias) for x [rows, C] and bias [C] (Relu, Gelu, GeluTanh): a linear layer's bias and its
    /// activation in one pass. The default adds, then activates in place. x and y may be of one 16-bit type (autocast;
    /// bias Float32): computed in Float32 on x's widening and rounded (the default through Float32 temporaries).
    /// </summary>
    void BiasActivation(UnaryOp op, Tensor x, Tensor bias, Tensor y)
    {
        if (x.DType.Is16Bit())
        {
            SixteenBitOperands.OnFloat32(this, x, y, (x32, y32) => BiasActivation(op, x32, bias, y32));
            return;
        }
        Binary(BinaryOp.Add, x, bias, y);
        Unary(op, y, y);
    }

    /// <summary>dx = dy * f'(x + bias), x, dy and dx [rows, C], bias [C]; x may be 16-bit (read widened). The default adds into dx first.</summary>
    void BiasActivationBackward(UnaryOp op, Tensor x, Tensor bias, Tensor dy, Tensor dx)
    {
        if (x.DType.Is16Bit())
        {
            using var wide = SixteenBitOperands.Widened(this, x)!;
            BiasActivationBackward(op, wide, bias, dy, dx);
            return;
        }
        using var pre = Tensor.Empty(x.Shape, x.Device).DetachFromScope();
        Binary(BinaryOp.Add, x, bias, pre);
        ActivationBackward(op, pre, dy, dx);
    }
}

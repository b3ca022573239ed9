namespace Sbp.Tensors;

// Operators and method forms that forward to Ops, for readable model code.
public sealed partial class Tensor
{
    public static Tensor operator +(Tensor a, Tensor b) => Ops.Add(a, b);
    public static Tensor operator -(Tensor a, Tensor b) => Ops.Sub(a, b);
    public static Tensor operator *(Tensor a, Tensor b) => Ops.Mul(a, b);
    public static Tensor operator /(Tensor a, Tensor b) => Ops.Div(a, b);
    public static Tensor operator +(Tensor a, float s) => Ops.Add(a, s);
    public static Tensor operator +(float s, Tensor a) => Ops.Add(a, s);
    public static Tensor operator -(Tensor a, float s) => Ops.Sub(a, s);
    public static Tensor operator -(float s, Tensor a) => Ops.Sub(s, a);
    public static Tensor operator *(Tensor a, float s) => Ops.Mul(a, s);
    public static Tensor operator *(float s, Tensor a) => Ops.Mul(a, s);
    public static Tensor operator /(Tensor a, float s) => Ops.Div(a, s);
    public static Tensor operator /(float s, Tensor a) => Ops.Div(s, a);
    public static Tensor operator -(Tensor a) => Ops.Neg(a);

    public Tensor Reshape(params int[] shape) => Ops.Reshape(this, shape);
    public Tensor Permute(params int[] perm) => Ops.Permute(this, perm);
    public Tensor Transpose(int dim0, int dim1) => Ops.Transpose(this, dim0, dim1);
    public Tensor Matmul(Tensor other) => Ops.Matmul(this, other);
    public Tensor Sum(params int[] dims) => Ops.Sum(this, dims);
    public Tensor Mean(params int[] dims) => Ops.Mean(this, dims);
}

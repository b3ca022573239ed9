namespace Sbp.PtxSim.Execution;

/// <summary>
/// .f32 operators in IEEE single precision with round-to-nearest-even (C# float arithmetic), fma via
/// MathF.FusedMultiplyAdd. The .approx / .full forms use the correctly rounded (or libm) function instead of the
/// hardware approximation: ex2.approx = 2^x, lg2.approx = log2, rsqrt.approx = 1/sqrt, rcp.approx = 1/x,
/// div.approx/.full = a/b, sin/cos/tanh.approx = MathF. min/max follow PTX: a NaN operand yields the other one.
/// </summary>
internal static partial class Alu
{
    public struct AddF : IBin<float> { public static float Op(float a, float b) => a + b; }
    public struct SubF : IBin<float> { public static float Op(float a, float b) => a - b; }
    public struct MulF : IBin<float> { public static float Op(float a, float b) => a * b; }
    public struct DivF : IBin<float> { public static float Op(float a, float b) => a / b; }
    public struct FmaF : ITern<float> { public static float Op(float a, float b, float c) => MathF.FusedMultiplyAdd(a, b, c); }
    public struct NegF : IUn<float> { public static float Op(float a) => -a; }
    public struct AbsF : IUn<float> { public static float Op(float a) => MathF.Abs(a); }
    public struct RcpF : IUn<float> { public static float Op(float a) => 1f / a; }
    public struct SqrtF : IUn<float> { public static float Op(float a) => MathF.Sqrt(a); }
    public struct RsqrtF : IUn<float> { public static float Op(float a) => 1f / MathF.Sqrt(a); }
    public struct Ex2F : IUn<float> { public static float Op(float a) => float.Exp2(a); }
    public struct Lg2F : IUn<float> { public static float Op(float a) => MathF.Log2(a); }
    public struct SinF : IUn<float> { public static float Op(float a) => MathF.Sin(a); }
    public struct CosF : IUn<float> { public static float Op(float a) => MathF.Cos(a); }
    public struct TanhF : IUn<float> { public static float Op(float a) => MathF.Tanh(a); }
    public struct CopyF : IUn<float> { public static float Op(float a) => a; }

    public struct MinF : IBin<float>
    {
        public static float Op(float a, float b)
        {
            if (float.IsNaN(a)) return float.IsNaN(b) ? float.NaN : b;
            if (float.IsNaN(b)) return a;
            if (a < b) return a;
            if (b < a) return b;
            return BitConverter.UInt32BitsToSingle(BitConverter.SingleToUInt32Bits(a) | BitConverter.SingleToUInt32Bits(b)); // min(-0, +0) = -0
        }
    }

    public struct MaxF : IBin<float>
    {
        public static float Op(float a, float b)
        {
            if (float.IsNaN(a)) return float.IsNaN(b) ? float.NaN : b;
            if (float.IsNaN(b)) return a;
            if (a > b) return a;
            if (b > a) return b;
            return BitConverter.UInt32BitsToSingle(BitConverter.SingleToUInt32Bits(a) & BitConverter.SingleToUInt32Bits(b)); // max(-0, +0) = +0
        }
    }
}

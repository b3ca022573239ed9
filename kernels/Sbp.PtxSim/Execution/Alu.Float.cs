namespace Sbp.PtxSim.Execution;

/// <summary>
/// .f32 operators in IEEE single precision with round-to-nearest-even (C# float arithmetic), fma via
/// MathF.FusedMultiplyAdd. The .approx / .full forms are in Approx.cs (results perturbed within the documented
/// error). min/max follow PTX: a NaN operand yields the other one.
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

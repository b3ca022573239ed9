using Sbp.Autograd;
using Sbp.Backends;
using Sbp.Rng;
using Sbp.Stochastic;
using Sbp.Tensors;

namespace Sbp;

// Stochastic regularization: dropout (per element) and drop path / stochastic depth (per sample).
// Masks come from the backend's BernoulliMask over Philox bits, so a GPU reproduces them exactly.
public static partial class Ops
{
    /// <summary>
    /// Dropout: in training with p &gt; 0, y = x * m with m_i = [u_i &gt;= p] / (1 - p) exactly, where
    /// u_i = Philox.Uniform(stream.Bits(i)) for the stream <c>rng.Take(x.Numel)</c> (see
    /// <see cref="KeepProbability"/> for how p maps onto the backend's BernoulliMask). The mask
    /// (x's shape) is saved and reused in backward: dx = g * m.
    /// With p = 0 or <paramref name="training"/> false it is the identity (a free view of x sharing its
    /// memory, gradient g, nothing saved) and draws no random numbers. p must be in [0, 1).
    /// </summary>
    public static Tensor Dropout(Tensor x, float p, RandomSource rng, bool training = true)
    {
        // under autocast a 16-bit x is read widened by the Float32 mask's multiply (Promotes): a Float32 output, no cast pass
        bool sixteen = Autocast16(x);
        const string op = "dropout";
        CheckFloatOrAutocast16(op, x, sixteen);
        ArgumentNullException.ThrowIfNull(rng);
        CheckDropProbability(op, p);
        if (!training || p == 0f) return IdentityView(op, x);
        return MaskMultiply(op, x, DrawMask(op, x, x.Shape, rng, p));
    }

    /// <summary>
    /// Drop path (stochastic depth) over x [N, ...]: one Bernoulli per sample along axis 0 from
    /// <c>rng.Take(N)</c> (the rule of <see cref="Dropout"/>), a mask [N, 1, ..., 1] of 0 or
    /// 1 / (1 - p), y = x * mask broadcast: whole samples are zeroed. The mask is saved for backward
    /// (dx = g * mask). p = 0 or not training: the identity (a free view, as for dropout). p must be in [0, 1).
    /// </summary>
    public static Tensor DropPath(Tensor x, float p, RandomSource rng, bool training = true)
    {
        // under autocast a 16-bit x is read widened by the Float32 mask's multiply (Promotes): a Float32 output, no cast pass
        bool sixteen = Autocast16(x);
        const string op = "drop_path";
        CheckFloatOrAutocast16(op, x, sixteen);
        ArgumentNullException.ThrowIfNull(rng);
        CheckDropProbability(op, p);
        if (x.Rank < 1)
            throw new ShapeMismatchException($"{op}: the input must have a batch axis ([N, ...]), got a scalar {x.Shape}.");
        if (!training || p == 0f) return IdentityView(op, x);
        var maskShape = new int[x.Rank];
        Array.Fill(maskShape, 1);
        maskShape[0] = x.Shape[0];
        return MaskMultiply(op, x, DrawMask(op, x, new Shape(maskShape), rng, p));
    }

    /// <summary>
    /// A fresh mask from <paramref name="rng"/>, or, while an SBP region is re-run in backward, the
    /// mask its forward drew (replayed; the random stream does not advance twice).
    /// </summary>
    static Tensor DrawMask(string op, Tensor x, Shape shape, RandomSource rng, float p)
    {
        if (RandomReplay.TryReplay(op, shape, out var replayed)) return replayed.View(shape);
        var mask = Tensor.Empty(op + ".mask", shape, x.Device);   // Float32 whatever x's type
        x.Backend.BernoulliMask(mask, rng.Take(shape.Numel), KeepProbability(p), KeepScale(p));
        RandomReplay.Record(op, mask, x);
        return mask;
    }

    /// <summary>
    /// The keepProbability for BernoulliMask whose drop threshold 1f - keep is exactly
    /// ceil(p 2^24) / 2^24: the uniforms are multiples of 2^-24, so u &gt;= threshold is exactly u &gt;= p
    /// (1 - that threshold and 1f minus it are exact in float32 for every p in [0, 1)).
    /// </summary>
    static float KeepProbability(float p) => (float)(1.0 - Math.Ceiling(p * 16777216.0) / 16777216.0);

    /// <summary>1 / (1 - p), rounded once.</summary>
    static float KeepScale(float p) => (float)(1.0 / (1.0 - p));

    static void CheckDropProbability(string op, float p)
    {
        if (!(p >= 0f && p < 1f))
            throw new ArgumentOutOfRangeException(nameof(p), $"{op}: the drop probability p must be in [0, 1), got {p}; p = 0 disables it.");
    }

    /// <summary>y = x * mask (mask broadcast); saves the mask, gradient g * mask.</summary>
    static Tensor MaskMultiply(string op, Tensor x, Tensor mask)
    {
        using var owned = mask;
        var y = Tensor.Empty(op, x.Shape, x.Device);   // Float32 (a 16-bit x under autocast is read widened)
        x.Backend.Binary(BinaryOp.Mul, x, mask, y);
        return Tape.Record(op, y, [x], [mask], ctx =>
        {
            var dx = New(op + ".backward", ctx.InputShape(0), ctx.Grad);
            dx.Backend.Binary(BinaryOp.Mul, ctx.Grad, ctx.Saved(0), dx);
            return [dx];
        }, SbpRule.Elementwise);
    }

    /// <summary>
    /// The disabled form of a random op: a view of x (no memory, no kernel) recorded as op, gradient g.
    /// </summary>
    static Tensor IdentityView(string op, Tensor x) => Tape.Record(op, x.View(x.Shape), [x], [], ctx => [ctx.Grad], SbpRule.Elementwise);
}

using Sbp.Tensors;

namespace Sbp.Autograd;

/// <summary>
/// The work of one recorded op: multiply-adds (MACs; FLOPs are about twice that) and bytes read and written, forward
/// and backward. Backward counts what the rule computes: only the gradients some input needs, and inside an SBP
/// region only the kept positions (a compact node).
/// </summary>
public readonly record struct OpCost(long ForwardMacs, long BackwardMacs, long ForwardBytes, long BackwardBytes)
{
    /// <summary>Forward and backward multiply-adds together.</summary>
    public long Macs => ForwardMacs + BackwardMacs;

    /// <summary>GFLOP/s of <paramref name="macs"/> multiply-adds (2 FLOPs each) done in <paramref name="milliseconds"/>; 0 for no time.</summary>
    public static double Gigaflops(long macs, double milliseconds) => milliseconds > 0 ? 2.0 * macs / (milliseconds * 1e6) : 0;

    /// <summary>The multiply-adds (<paramref name="phase"/> forward or backward) and bytes of one phase.</summary>
    public (long Macs, long Bytes) InPhase(OpProfile.Phase phase) =>
        phase == OpProfile.Phase.Forward ? (ForwardMacs, ForwardBytes) : (BackwardMacs, BackwardBytes);

    public static OpCost operator +(OpCost a, OpCost b) =>
        new(a.ForwardMacs + b.ForwardMacs, a.BackwardMacs + b.BackwardMacs, a.ForwardBytes + b.ForwardBytes, a.BackwardBytes + b.BackwardBytes);
}

/// <summary>
/// Counts the multiply-adds of recorded ops from their shapes, as fvcore and PyTorch's FlopCounterMode do: GEMM-like
/// ops (linear, matmul, convolution, attention) count their products; every other op counts no MACs, only the bytes
/// it moves (element-wise work is bound by memory). Conventions:
/// <list type="bullet">
/// <item>linear [rows, in] x [out, in]^T: rows x in x out; backward: the same again for dx and for dW (each only when needed).</item>
/// <item>matmul [..., m, k] x [..., k, n]: batch x m x k x n; backward likewise per needed input.</item>
/// <item>convolution: output elements x (in channels / groups) x kernel volume (stride, padding and dilation are in
/// the output size); backward likewise for dx and dW.</item>
/// <item>attention q [B, H, N, D], k [B, H, M, D], v [B, H, M, Dv]: B H N M (D + Dv) (scores and the weighted sum);
/// backward B H N M Dv for dV, as much for dP (when q, k or the bias needs a gradient), B H N M D each for dQ and dK:
/// twice the forward when all are needed.</item>
/// </list>
/// A compact node (inside an SBP region) scales its backward by the share of positions its gradient keeps.
/// </summary>
public static class FlopCounter
{
    /// <summary>The cost of <paramref name="node"/> (read after the forward pass: a region marks its nodes compact when it closes).</summary>
    public static OpCost Of(TapeNode node)
    {
        ArgumentNullException.ThrowIfNull(node);
        var x = node.InputShapes;
        var y = node.OutputShape;
        bool[] needs = node.Inputs.Select(t => t.RequiresGrad).ToArray();
        long forward = 0, backward = 0;
        switch (node.Op)
        {
            case "linear" or "linear_rows" or "matmul" when x.Count >= 2:
            {
                // output elements x the contracted size (the input's last axis)
                long macs = y.Numel * x[0][-1];
                forward = macs;
                backward = (needs[0] ? macs : 0) + (needs[1] ? macs : 0);
                break;
            }
            case "conv2d" or "conv3d" when x.Count >= 2:
            {
                var w = x[1];
                long macs = w[0] == 0 ? 0 : y.Numel * (w.Numel / w[0]);
                forward = macs;
                backward = (needs[0] ? macs : 0) + (needs[1] ? macs : 0);
                break;
            }
            case "scaled_dot_product_attention" when x.Count >= 3:
            {
                var (q, k, v) = (x[0], x[1], x[2]);
                long pairs = (long)q[0] * q[1] * q[2] * k[2];
                forward = pairs * (q[3] + v[3]);
                // dV = P^T dO; dP = dO V^T for any of q, k or the bias, then dQ = dS K and dK = dS^T Q as needed
                bool scores = needs[0] || needs[1] || (x.Count > 3 && needs[3]);
                backward = (needs[2] ? pairs * v[3] : 0) + (scores ? pairs * v[3] : 0) + (needs[0] ? pairs * q[3] : 0) + (needs[1] ? pairs * q[3] : 0);
                break;
            }
        }
        long inBytes = x.Sum(s => s.Numel) * sizeof(float), outBytes = y.Numel * sizeof(float);
        long gradBytes = outBytes + Enumerable.Range(0, x.Count).Where(i => needs[i]).Sum(i => x[i].Numel * sizeof(float));
        double share = CompactShare(node);
        return new OpCost(forward, (long)Math.Round(backward * share), inBytes + outBytes, (long)Math.Round((gradBytes + node.SavedBytes) * share));
    }

    /// <summary>The whole tape's cost: the sum over its nodes.</summary>
    public static OpCost Of(Tape tape)
    {
        ArgumentNullException.ThrowIfNull(tape);
        var total = new OpCost();
        foreach (var node in tape.Nodes) total += Of(node);
        return total;
    }

    /// <summary>1 for a dense node; for a compact one the kept share of its first input that has a compact form.</summary>
    static double CompactShare(TapeNode node)
    {
        if (!node.IsCompact) return 1;
        for (int i = 0; i < node.InputShapes.Count; i++)
        {
            long full = node.InputShapes[i].Numel;
            long kept = node.RuleInputShape(i).Numel;
            if (kept != full && full > 0) return (double)kept / full;
        }
        return 1;
    }
}

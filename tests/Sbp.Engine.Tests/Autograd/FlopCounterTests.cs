using Sbp.Autograd;
using Sbp.Memory;
using Sbp.Nn;
using Sbp.Rng;
using Sbp.Stochastic;
using Sbp.Tensors;

namespace Sbp.Engine.Tests.Autograd;

/// <summary>
/// FlopCounter against multiply-adds counted by hand: linear, batched matmul, grouped and strided convolutions with
/// padding, attention, a whole MLP; backward counts only the gradients that are needed, and inside an SBP region
/// only the kept positions.
/// </summary>
public class FlopCounterTests
{
    static readonly Device Cpu = Device.CreateCpu("flop counter tests");

    static Tensor Data(params int[] shape) => Tensor.Zeros(new Shape(shape), Cpu);

    static Tensor Param(params int[] shape)
    {
        var t = Tensor.Zeros(new Shape(shape), Cpu, MemoryCategory.Parameter);
        t.RequiresGrad = true;
        return t;
    }

    /// <summary>The cost of the single op <paramref name="f"/> records.</summary>
    static OpCost CostOf(Func<Tensor> f)
    {
        using var scope = TensorScope.Begin();
        using var tape = Tape.Begin();
        f();
        Assert.That(tape.Nodes, Has.Count.EqualTo(1));
        return FlopCounter.Of(tape.Nodes[0]);
    }

    [Test]
    public void Linear_counts_rows_times_in_times_out_and_backward_per_needed_gradient()
    {
        // x [2, 3, 16] (6 rows), W [32, 16]: 6 x 16 x 32 = 3072
        var data = CostOf(() => Ops.Linear(Data(2, 3, 16), Param(32, 16), Param(32)));
        Assert.That((data.ForwardMacs, data.BackwardMacs), Is.EqualTo((3072L, 3072L)), "data input: dW only");
        var x = Param(2, 3, 16);
        var both = CostOf(() => Ops.Linear(x, Param(32, 16)));
        Assert.That((both.ForwardMacs, both.BackwardMacs), Is.EqualTo((3072L, 6144L)), "dx and dW");
        var rows = CostOf(() => Ops.LinearRows(x, Param(48, 16), null, 16, 8));
        Assert.That(rows.ForwardMacs, Is.EqualTo(6L * 16 * 8), "a block of 8 weight rows");
        Assert.That(data.ForwardBytes, Is.EqualTo(4L * (96 + 512 + 32 + 192)), "x, W, b read; y written");
    }

    [Test]
    public void Batched_matmul_counts_batch_times_m_k_n()
    {
        var c = CostOf(() => Ops.Matmul(Param(2, 3, 4, 5), Data(2, 3, 5, 7)));
        Assert.That((c.ForwardMacs, c.BackwardMacs), Is.EqualTo((2L * 3 * 4 * 5 * 7, 2L * 3 * 4 * 5 * 7)));
    }

    [Test]
    public void Convolutions_count_output_elements_times_channels_per_group_times_kernel()
    {
        // x [2, 4, 9, 9], w [6, 2, 3, 3], groups 2, stride 2, padding 1 -> y [2, 6, 5, 5]: 300 outputs x (2 x 3 x 3)
        var c2 = CostOf(() => Ops.Conv2d(Data(2, 4, 9, 9), Param(6, 2, 3, 3), stride: [2, 2], padding: [1, 1], groups: 2));
        Assert.That((c2.ForwardMacs, c2.BackwardMacs), Is.EqualTo((300L * 18, 300L * 18)));
        // x [1, 3, 4, 8, 8], w [5, 3, 2, 3, 3], stride (2, 1, 1), padding (0, 1, 1) -> y [1, 5, 2, 8, 8]: 640 x 54, dx and dW
        var c3 = CostOf(() => Ops.Conv3d(Param(1, 3, 4, 8, 8), Param(5, 3, 2, 3, 3), stride: [2, 1, 1], padding: [0, 1, 1]));
        Assert.That((c3.ForwardMacs, c3.BackwardMacs), Is.EqualTo((640L * 54, 2L * 640 * 54)));
    }

    [Test]
    public void Attention_counts_scores_and_weighted_sum_and_twice_that_backward()
    {
        // q [2, 3, 5, 4], k [2, 3, 7, 4], v [2, 3, 7, 6]: 2 x 3 x 5 x 7 x (4 + 6) = 2100
        var c = CostOf(() => Ops.ScaledDotProductAttention(Param(2, 3, 5, 4), Param(2, 3, 7, 4), Param(2, 3, 7, 6)));
        Assert.That((c.ForwardMacs, c.BackwardMacs), Is.EqualTo((2100L, 4200L)));
        var valueOnly = CostOf(() => Ops.ScaledDotProductAttention(Data(2, 3, 5, 4), Data(2, 3, 7, 4), Param(2, 3, 7, 6)));
        Assert.That(valueOnly.BackwardMacs, Is.EqualTo(2L * 3 * 5 * 7 * 6), "only dV = P^T dO");
    }

    [Test]
    public void Element_wise_ops_count_bytes_and_no_macs()
    {
        var c = CostOf(() => Ops.Gelu(Param(4, 8)));
        Assert.That((c.ForwardMacs, c.BackwardMacs, c.ForwardBytes), Is.EqualTo((0L, 0L, 2L * 32 * 4)));
    }

    [Test]
    public void A_whole_mlp_sums_its_ops()
    {
        // Linear(16, 64), GELU, Linear(64, 16) on 10 rows of data: forward 2 x 10 x 16 x 64; backward: the first layer's dW,
        // the second's dx and dW (the data needs no gradient).
        using var mlp = new Mlp(16, 64, new RandomSource(1), device: Cpu);
        using var scope = TensorScope.Begin();
        using var tape = Tape.Begin();
        mlp.Forward(Data(10, 16));
        var total = FlopCounter.Of(tape);
        Assert.That((total.ForwardMacs, total.BackwardMacs), Is.EqualTo((2L * 10240, 3L * 10240)));
    }

    [TestCase(2)]
    [TestCase(4)]
    public void Inside_an_sbp_region_backward_counts_the_kept_positions_only(int stride)
    {
        // A position-wise body over [B, N, C] kept at 1 of `stride` positions of N: every compact node's backward is keep x dense.
        const int B = 2, N = 8, C = 12;
        var w1 = Param(24, C);
        var w2 = Param(C, 24);
        OpCost[] Run(KeepMask? mask)
        {
            using var scope = TensorScope.Begin();
            using var tape = Tape.Begin();
            var x = Param(B, N, C);
            Tensor Body(Tensor t) => Ops.Linear(Ops.Gelu(Ops.Linear(t, w1)), w2);
            if (mask is null) Body(x);
            else SbpRegion.Run("mlp", x, 1, mask, Body, new RegionOptions(RegionMode.SparseCache));
            return tape.Nodes.Where(n => n.Op is "linear" or "gelu").Select(FlopCounter.Of).ToArray();
        }
        var dense = Run(null);
        var sbp = Run(KeepMask.Strided(N, stride, 0));
        Assert.That(sbp.Select(c => c.ForwardMacs), Is.EqualTo(dense.Select(c => c.ForwardMacs)), "the forward pass is unchanged");
        Assert.That(sbp.Select(c => c.BackwardMacs), Is.EqualTo(dense.Select(c => c.BackwardMacs / stride)));
        Assert.That(sbp.Sum(c => c.BackwardMacs), Is.GreaterThan(0));
    }
}

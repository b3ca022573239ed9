using Sbp.PtxSim.Execution;
using Sbp.PtxSim.Tests.Support;

namespace Sbp.PtxSim.Tests;

/// <summary>
/// What a GPU leaves unordered runs in a seeded order: the lanes of an atomic, blocks, warps between barriers. Float
/// atomic sums then differ in their last bits between seeds (within the summation error bound) and replay bit for bit
/// under one seed.
/// </summary>
public class OrderTests
{
    private const string SumKernel = Harness.Header + """
        .visible .entry sum(.param .u64 p_x, .param .u64 p_sum)
        {
            .reg .pred %p<2>;
            .reg .b32 %r<8>;
            .reg .b64 %rd<8>;
            .reg .f32 %f<4>;
            .shared .align 4 .f32 part;
            ld.param.u64 %rd1, [p_x];
            ld.param.u64 %rd2, [p_sum];
            mov.u32 %r1, %ctaid.x;
            mov.u32 %r2, %ntid.x;
            mov.u32 %r3, %tid.x;
            mad.lo.u32 %r4, %r1, %r2, %r3;
            mul.wide.u32 %rd3, %r4, 4;
            add.s64 %rd4, %rd1, %rd3;
            ld.global.f32 %f1, [%rd4];
            red.global.add.f32 [%rd2], %f1;            // one global sum over every thread
            mov.u32 %r5, part;
            setp.ne.u32 %p1, %r3, 0;
            @!%p1 st.shared.f32 [%r5], 0f00000000;
            bar.sync 0;
            atom.shared.add.f32 %f2, [%r5], %f1;       // and one per block, in shared memory
            bar.sync 0;
            @%p1 bra $END;
            ld.shared.f32 %f3, [%r5];
            mul.wide.u32 %rd5, %r1, 4;
            add.s64 %rd6, %rd2, %rd5;
            st.global.f32 [%rd6+4], %f3;
        $END:
            ret;
        }
        """;

    private const int Blocks = 16, Threads = 128, N = Blocks * Threads;

    /// <summary>Values of mixed sign and magnitude, so the order of the additions shows in the rounded sum.</summary>
    private static readonly float[] X = MakeX();

    private static float[] MakeX()
    {
        var rng = new Random(20240601);
        return [.. Enumerable.Range(0, N).Select(_ => (float)((rng.NextDouble() * 2 - 1) * Math.Pow(10, rng.Next(-3, 4))))];
    }

    /// <summary>The global sum and the per-block sums of X on a (new or reused) simulator with the given seed.</summary>
    private static float[] Sum(ulong seed, Harness? reuse = null)
    {
        var h = reuse ?? new Harness();
        h.Sim.Seed = seed;
        ulong x = h.Upload(X), sums = h.Upload(new float[1 + Blocks]);
        h.Sim.Launch(PtxModule.Parse(SumKernel, "sum.ptx"), "sum", new Dim3(Blocks), new Dim3(Threads), 0, KernelArg.Ptr(x), KernelArg.Ptr(sums));
        return h.Download<float>(sums, 1 + Blocks);
    }

    /// <summary>Recursive summation of n terms in any order: |computed - exact| &lt;= gamma(n - 1) * sum |x| (Higham 4.2).</summary>
    private static void WithinSummationBound(float got, ArraySegment<float> x, string what)
    {
        double exact = x.Sum(v => (double)v), abs = x.Sum(v => Math.Abs((double)v));
        double u = Math.ScaleB(1.0, -24), gamma = (x.Count - 1) * u / (1 - (x.Count - 1) * u);
        Assert.That(Math.Abs(got - exact), Is.LessThanOrEqualTo(gamma * abs), $"{what}: {got:R} vs exact {exact:R}");
    }

    [Test]
    public void FloatAtomicSumsDifferBetweenSeedsWithinTheSummationBound()
    {
        float[] one = Sum(1), two = Sum(2);
        Assert.That(Harness.Bits(two[0]), Is.Not.EqualTo(Harness.Bits(one[0])), "the global sum's bits depend on the order");
        Assert.That(Enumerable.Range(1, Blocks).Count(b => one[b] != two[b]), Is.GreaterThan(Blocks / 2), "so do most block sums");
        foreach (var s in new[] { one, two })
        {
            WithinSummationBound(s[0], X, "global sum");
            for (int b = 0; b < Blocks; b++) WithinSummationBound(s[1 + b], new ArraySegment<float>(X, b * Threads, Threads), $"block {b}");
        }
    }

    [Test]
    public void OneSeedReplaysBitForBit()
    {
        var first = Sum(7).Select(Harness.Bits).ToArray();
        Assert.That(Sum(7).Select(Harness.Bits), Is.EqualTo(first));
        Assert.That(new PtxSimulator(new SimMemory()).Seed, Is.EqualTo(PtxSimulator.DefaultSeed));
    }

    [Test]
    public void RepeatingALaunchMayReorderItsAtomics()
    {
        // A launch's order is keyed by the seed and the launch's number on the simulator: like a GPU, running the same
        // kernel again can round a float atomic sum differently.
        var h = new Harness();
        float first = Sum(3, h)[0];
        var again = Enumerable.Range(0, 4).Select(_ => Sum(3, h)[0]).ToArray();
        Assert.That(again.Any(s => s != first), Is.True);
    }

    [Test]
    public void BlocksRunInASeededPermutation()
    {
        // Thread 0 of each block takes a ticket; order[ticket] = linear block index.
        const string ptx = Harness.Header + """
            .visible .entry k(.param .u64 p_next, .param .u64 p_order)
            {
                .reg .pred %p<2>;
                .reg .b32 %r<12>;
                .reg .b64 %rd<8>;
                ld.param.u64 %rd1, [p_next];
                ld.param.u64 %rd2, [p_order];
                mov.u32 %r1, %tid.x;
                setp.ne.u32 %p1, %r1, 0;
                @%p1 bra $END;
                mov.u32 %r2, %ctaid.x;
                mov.u32 %r3, %ctaid.y;
                mov.u32 %r4, %nctaid.x;
                mad.lo.u32 %r5, %r3, %r4, %r2;
                atom.global.add.u32 %r6, [%rd1], 1;
                mul.wide.u32 %rd3, %r6, 4;
                add.s64 %rd4, %rd2, %rd3;
                st.global.u32 [%rd4], %r5;
            $END:
                ret;
            }
            """;
        uint[] Order(ulong seed)
        {
            var h = new Harness();
            h.Sim.Seed = seed;
            ulong next = h.Upload(new uint[1]), order = h.Alloc<uint>(35);
            h.Run(ptx, "k", new Dim3(7, 5), new Dim3(64), 0, KernelArg.Ptr(next), KernelArg.Ptr(order));
            return h.Download<uint>(order, 35);
        }
        var identity = Enumerable.Range(0, 35).Select(i => (uint)i).ToArray();
        uint[] a = Order(1), b = Order(2);
        Assert.That(a, Is.EquivalentTo(identity), "every block runs once");
        Assert.That(a, Is.Not.EqualTo(identity));
        Assert.That(b, Is.Not.EqualTo(a));
    }

    [TestCase(1UL), TestCase(2UL), TestCase(3UL), TestCase(5UL), TestCase(64UL), TestCase(1000UL), TestCase(4097UL)]
    public void PermutationIsABijection(ulong n)
    {
        var p = new Machine.Permutation(n, 0xC0FFEE);
        var seen = new HashSet<ulong>();
        for (ulong i = 0; i < n; i++)
        {
            ulong v = p[i];
            Assert.That(v, Is.LessThan(n));
            Assert.That(seen.Add(v), Is.True, $"{v} twice");
        }
    }
}

using Sbp.PtxSim.Tests.Support;

namespace Sbp.PtxSim.Tests;

/// <summary>shfl.sync (bfly, down, up, idx, predicate output, clamps) and vote.sync, plus their .sync contract checks.</summary>
public class WarpTests
{
    [Test]
    public void ButterflyReductionGivesEveryLaneTheWarpSum()
    {
        var a = Enumerable.Range(0, 64).Select(i => (float)(i * 0.5 - 3)).ToArray();
        var got = new Harness().RunElementwise("""
            mov.f32 %f3, %f1;
            shfl.sync.bfly.b32 %f4, %f3, 16, 31, -1;
            add.f32 %f3, %f3, %f4;
            shfl.sync.bfly.b32 %f4, %f3, 8, 31, -1;
            add.f32 %f3, %f3, %f4;
            shfl.sync.bfly.b32 %f4, %f3, 4, 31, -1;
            add.f32 %f3, %f3, %f4;
            shfl.sync.bfly.b32 %f4, %f3, 2, 31, -1;
            add.f32 %f3, %f3, %f4;
            shfl.sync.bfly.b32 %f4, %f3, 1, 31, -1;
            add.f32 %f3, %f3, %f4;
            mov.b32 %r3, %f3;
            """, a, new float[64]);
        for (int w = 0; w < 2; w++)
        {
            float sum = a.Skip(w * 32).Take(32).Sum();
            Assert.That(got.Skip(w * 32).Take(32), Is.All.EqualTo(sum));
        }
    }

    [Test]
    public void DownReductionAndPredicateOutput()
    {
        // down by 1 with clamp 31: lane 31 has no source (p = false) and keeps its own value.
        var got = new Harness().RunElementwise("""
            shfl.sync.down.b32 %r4|%p1, %r1, 1, 31, 0xffffffff;
            selp.u32 %r5, 1000, 0, %p1;
            add.u32 %r3, %r4, %r5;
            """, Enumerable.Range(0, 32).Select(i => (uint)i * 3).ToArray(), new uint[32]);
        for (uint l = 0; l < 32; l++)
            Assert.That(got[l], Is.EqualTo(l < 31 ? (l + 1) * 3 + 1000 : 31 * 3), $"lane {l}");
    }

    [Test]
    public void DownWithSegmentsAndUpAndIdx()
    {
        // c = 0x0F1F? Use width 8 segments: c = ((32 - 8) << 8) | 31 = 0x181F for down/idx; up uses c = (32-8) << 8.
        var got = new Harness().RunElementwise("""
            shfl.sync.down.b32 %r4, %r1, 2, 0x181F, -1;
            shfl.sync.up.b32 %r5, %r1, 1, 0x1800, -1;
            shfl.sync.idx.b32 %r6, %r1, 3, 0x181F, -1;
            mul.lo.u32 %r3, %r4, 10000;
            mad.lo.u32 %r3, %r5, 100, %r3;
            add.u32 %r3, %r3, %r6;
            """, Enumerable.Range(0, 32).Select(i => (uint)i).ToArray(), new uint[32]);
        for (uint l = 0; l < 32; l++)
        {
            uint seg = l & ~7u;
            uint down = l + 2 <= seg + 7 ? l + 2 : l;
            uint up = l >= seg + 1 ? l - 1 : l;
            uint idx = seg + 3;
            Assert.That(got[l], Is.EqualTo(down * 10000 + up * 100 + idx), $"lane {l}");
        }
    }

    [Test]
    public void VoteAllAnyBallot()
    {
        var a = Enumerable.Range(0, 32).Select(i => i % 5 == 0 ? 1u : 0u).ToArray();
        var got = new Harness().RunElementwise("""
            setp.ne.u32 %p1, %r1, 0;
            vote.sync.ballot.b32 %r4, %p1, 0xffffffff;
            vote.sync.any.pred %p2, %p1, 0xffffffff;
            vote.sync.all.pred %p3, %p1, 0xffffffff;
            vote.sync.all.pred %p4, !%p3, 0xffffffff;
            selp.u32 %r5, 1, 0, %p2;
            selp.u32 %r6, 2, 0, %p3;
            selp.u32 %r7, 4, 0, %p4;
            or.b32 %r5, %r5, %r6;
            or.b32 %r5, %r5, %r7;
            xor.b32 %r3, %r4, %r5;
            """, a, new uint[32]);
        uint ballot = 0;
        for (int l = 0; l < 32; l++) if (a[l] != 0) ballot |= 1u << l;
        Assert.That(got, Is.All.EqualTo(ballot ^ (1u | 4u)));
    }

    [Test]
    public void ShuffleFromAnExitedLaneIsAnError()
    {
        var ex = Assert.Throws<PtxSimException>(() => new Harness().RunElementwise("""
            setp.ge.u32 %p1, %r0, 16;
            @%p1 exit;
            shfl.sync.idx.b32 %r3, %r1, 20, 31, 0x0000ffff;
            """, new uint[32], new uint[32]));
        Assert.That(ex!.Message, Does.Contain("reads lane 20"));
        Assert.That(ex.Thread, Is.EqualTo(new Dim3(0, 0, 0)));
    }

    [Test]
    public void MembermaskLaneThatDivergedIsAnError()
    {
        // Lanes >= 16 skip the shuffle but are named in the full membermask.
        var ex = Assert.Throws<PtxSimException>(() => new Harness().RunElementwise("""
            mov.u32 %r3, 0;
            setp.ge.u32 %p1, %r0, 16;
            @%p1 bra $SKIP;
            shfl.sync.bfly.b32 %r3, %r1, 1, 31, -1;
            $SKIP:
            """, new uint[32], new uint[32]));
        Assert.That(ex!.Message, Does.Contain("did not execute this instruction together"));
    }

    [Test]
    public void ShuffleWithinAMembermaskOfHalfTheWarp()
    {
        var got = new Harness().RunElementwise("""
            mov.u32 %r3, 9;
            setp.ge.u32 %p1, %r0, 16;
            @%p1 bra $SKIP;
            shfl.sync.bfly.b32 %r3, %r1, 1, 31, 0xffff;
            $SKIP:
            """, Enumerable.Range(0, 32).Select(i => (uint)i).ToArray(), new uint[32]);
        for (uint l = 0; l < 32; l++) Assert.That(got[l], Is.EqualTo(l < 16 ? l ^ 1 : 9u));
    }

    [Test]
    public void ActiveMaskReportsTheConvergedLanes()
    {
        var got = new Harness().RunElementwise("""
            mov.u32 %r3, 0;
            setp.lt.u32 %p1, %r0, 5;
            @!%p1 bra $SKIP;
            activemask.b32 %r3;
            $SKIP:
            """, new uint[32], new uint[32]);
        Assert.That(got.Take(5), Is.All.EqualTo(0x1Fu));
        Assert.That(got.Skip(5), Is.All.EqualTo(0u));
    }
}

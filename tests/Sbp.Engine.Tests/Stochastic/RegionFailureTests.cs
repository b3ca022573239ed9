using Sbp.Autograd;
using Sbp.Engine.Tests.Support;
using Sbp.Memory;
using Sbp.Stochastic;
using Sbp.Tensors;

namespace Sbp.Engine.Tests.Stochastic;

/// <summary>
/// docs/SBP.md section 6: whatever fails inside a region (a refused op, an output the region cannot mask,
/// a body that moves its positions, a nested region, out of memory, an anomaly, the body's own exception),
/// the tape's saved bytes, nodes, index buffers and reports and the pool's bytes in use are what they were
/// before the region began, in every caching mode; and the tape goes on working.
/// </summary>
public class RegionFailureTests : DeviceTest
{
    /// <summary>A region body that fails: what it does before failing, and the exception it must end in.</summary>
    /// <summary><paramref name="InOracle"/>: the oracle fails too (it is plain backprop, so it refuses nothing); <paramref name="Stride"/>: of the strided mask over 8 positions.</summary>
    public sealed record FailureCase(string Name, Func<Tensor, Tensor, Tensor> Body, Type Expected, string MessagePart, bool InOracle = false, int Stride = 2)
    {
        public override string ToString() => Name;
    }

    // Every body first records a few ops (saving tensors, gathering them eagerly) and then fails.
    static Tensor Prefix(Tensor x, Tensor w) => Ops.Gelu(Ops.Linear(Ops.LayerNorm(x, [x.Shape[^1]]), w));

    public static readonly FailureCase[] Cases =
    [
        new("refused_mixing_op", (x, w) => Ops.Sum(Prefix(x, w), [1], keepDim: true), typeof(SbpRegionException), "mixes positions along axis 1"),
        new("refused_reshape_that_interleaves", (x, w) => Ops.Reshape(Prefix(x, w), 2, 4, 2, 4), typeof(SbpRegionException), "same offsets", Stride: 4),
        new("output_without_the_dimension", (x, w) => { Prefix(x, w); return Ops.Mul(w, 2f); }, typeof(SbpRegionException), "does not carry the region's dimension"),
        new("output_of_another_size", (x, w) => Ops.Pad(Prefix(x, w), [0, 0, 0, 2]), typeof(SbpRegionException), "10 positions"),
        new("output_moved_not_by_a_roll", (x, w) =>
        {
            // A perfect shuffle of the 8 positions (reshape, transpose, reshape): kept [1, 3, 5, 7] come out at [2, 3, 6, 7].
            var h = Prefix(x, w);
            return Ops.Reshape(Ops.Permute(Ops.Reshape(h, 2, 2, 4, 4), 0, 2, 1, 3), 2, 8, 4);
        }, typeof(SbpRegionException), "moves positions"),
        new("nested_region", (x, w) => SbpRegion.Run("inner", Prefix(x, w), 1, KeepMask.Strided(8, 2, 1), h => Ops.Gelu(h)),
            typeof(SbpRegionException), "regions do not nest"),
        new("anomaly", (x, w) => Ops.Log(Ops.Sub(Prefix(x, w), 10f)), typeof(AnomalyException), "log", InOracle: true),
        new("out_of_memory", (x, w) =>
        {
            var h = Prefix(x, w);
            h.Device.Pool.LimitBytes = h.Device.Pool.ReservedBytes + 4096;
            return Ops.Linear(h, Ops.Mul(Tensor.Ones(new Shape(100_000, 4), h.Device), 1f));
        }, typeof(DeviceOutOfMemoryException), "", InOracle: true),
        new("the_body_throws", (x, w) => { Prefix(x, w); throw new InvalidDataException("bad batch"); }, typeof(InvalidDataException), "bad batch", InOracle: true),
    ];

    static readonly RegionMode[] Modes = [RegionMode.SparseCache, RegionMode.Recompute, RegionMode.Checkpoint, RegionMode.Oracle];

    [TestCaseSource(nameof(Cases))]
    public void A_failed_region_leaves_the_tape_and_the_pool_as_they_were(FailureCase c)
    {
        foreach (var mode in Modes)
        {
            if (mode == RegionMode.Oracle && !c.InOracle) continue;
            Device.Pool.LimitBytes = null;
            using var scope = TensorScope.Begin();
            var x = T(Rand.Uniform(3, 2 * 8 * 4), 2, 8, 4);
            x.RequiresGrad = true;
            var w = T(Rand.Uniform(4, 16, -0.5f, 0.5f), 4, 4);
            w.RequiresGrad = true;
            using var tape = Tape.Begin();
            // Something recorded before the region (with an index buffer from an earlier region), which must survive.
            var before = SbpRegion.Run("earlier", x, 1, KeepMask.Strided(8, 2, 0), h => Prefix(h, w), new RegionOptions(mode));
            var (nodes, saved, indices, reports, inUse) = (tape.Nodes.Count, tape.SavedBytes, tape.IndexBytes, tape.Regions.Count, Device.Pool.InUseBytes);
            using (c.Name == "anomaly" ? Tape.DetectAnomalies() : default)
            {
                var e = Assert.Throws(c.Expected, () => SbpRegion.Run("failing", x, 1, KeepMask.Strided(8, c.Stride, 1), h => c.Body(h, w), new RegionOptions(mode)),
                    $"{c.Name} in {mode}");
                Assert.That(e!.Message, Does.Contain(c.MessagePart), $"{c.Name} in {mode}");
            }
            Device.Pool.LimitBytes = null;
            Assert.That(tape.Nodes, Has.Count.EqualTo(nodes), $"{c.Name} in {mode}: nodes");
            Assert.That(tape.SavedBytes, Is.EqualTo(saved), $"{c.Name} in {mode}: saved bytes");
            Assert.That(tape.IndexBytes, Is.EqualTo(indices), $"{c.Name} in {mode}: index bytes");
            Assert.That(tape.Regions, Has.Count.EqualTo(reports), $"{c.Name} in {mode}: region reports");
            Assert.That(Device.Pool.InUseBytes, Is.EqualTo(inUse), $"{c.Name} in {mode}: pool bytes in use");
            // The tape still works: backward through what was recorded before the failure.
            tape.Backward(Ops.Sum(before));
            Assert.That(w.Grad, Is.Not.Null, $"{c.Name} in {mode}: the earlier region's gradient");
        }
    }
}

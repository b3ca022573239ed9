using Sbp.Backends.Cuda;
using Sbp.PtxSim;

namespace Sbp.KernelProfile;

/// <summary>
/// A sample of a strided launch (strided_copy_f32, binary_f32, transpose_f32) with its real axes and strides: the
/// outermost axes are shortened until the iteration space holds at most <see cref="LaunchSampler.SampleElements"/>
/// elements, so the access pattern (which axis is contiguous, how far apart the reads are) is the real one.
/// </summary>
internal static class StridedSample
{
    /// <summary>The launch at the reduced iteration space, in <paramref name="memory"/>, and real elements / sampled ones.</summary>
    public static (uint Grid, uint Block, KernelArg[] Args, double Scale, string Key, List<ulong> Allocations) Build(RecordedLaunch l, SimMemory memory)
    {
        int rank = (int)l.Args[l.Entry switch { "binary_f32" => 4, "strided_copy_f32" => 3, _ => 2 }].Bits;
        var meta = l.Meta ?? throw new ArgumentException($"{l.Entry}: the recorded launch has no shape metadata to sample with.", nameof(l));
        var dims = meta[..rank].ToArray();
        var s1 = meta[rank..(2 * rank)];
        var s2 = meta[(2 * rank)..(3 * rank)];
        long real = dims.Aggregate(1L, (p, d) => p * d);
        long factor = (real + LaunchSampler.SampleElements - 1) / LaunchSampler.SampleElements;
        for (int i = 0; i < rank && factor > 1; i++)
        {
            long keep = Math.Max(1, (dims[i] + factor - 1) / factor);
            factor = (factor * keep + dims[i] - 1) / dims[i];
            dims[i] = (int)keep;
        }
        long n = dims.Aggregate(1L, (p, d) => p * d);
        var alloc = new List<ulong>();
        var rng = new Random(1);
        ulong Buffer(IEnumerable<int> strides)
        {
            long extent = 1 + dims.Zip(strides, (d, s) => (long)(d - 1) * Math.Abs(s)).Sum();
            var data = new float[extent];
            for (int i = 0; i < data.Length; i++) data[i] = (float)rng.NextDouble();
            ulong p = memory.Allocate(4 * extent);
            memory.Write<float>(p, data);
            alloc.Add(p);
            return p;
        }
        var m = KernelArg.Bytes(PtxKernels.MetaOf(l.Entry, [.. dims, .. s1, .. s2]));
        string key = $"{l.Entry} dims [{string.Join(',', dims)}] strides [{string.Join(',', s1)}] [{string.Join(',', s2)}]";
        uint Grid(long work) => (uint)Math.Clamp((work + 255) / 256, 1, 4096);
        switch (l.Entry)
        {
            case "binary_f32":
            {
                ulong a = Buffer(s1), b = Buffer(s2), c = Buffer(dims.Select((_, i) => dims.Skip(i + 1).Aggregate(1, (p, d) => p * d)));
                return (Grid(n), 256, [KernelArg.Ptr(a), KernelArg.Ptr(b), KernelArg.Ptr(c), KernelArg.U32((uint)n), KernelArg.U32((uint)rank), m,
                    KernelArg.U32((uint)l.Args[6].Bits)], (double)real / n, key + $" op {l.Args[6].Bits}", alloc);
            }
            case "transpose_f32":
            {
                int ax = (int)l.Args[4].Bits, bx = (int)l.Args[5].Bits;
                long ta = (dims[ax] + 31) / 32, tb = (dims[bx] + 31) / 32, batch = n / ((long)dims[ax] * dims[bx]);
                ulong x = Buffer(s1), y = Buffer(s2);
                return ((uint)Math.Min(ta * tb * batch, 65535), 256, [KernelArg.Ptr(x), KernelArg.Ptr(y), KernelArg.U32((uint)rank), m, KernelArg.U32((uint)ax),
                    KernelArg.U32((uint)bx), KernelArg.U32((uint)ta), KernelArg.U32((uint)tb), KernelArg.U32((uint)batch), KernelArg.U32((uint)l.Args[9].Bits)],
                    (double)real / n, key, alloc);
            }
            default:
            {
                ulong x = Buffer(s1), y = Buffer(s2);
                return (Grid(n), 256, [KernelArg.Ptr(x), KernelArg.Ptr(y), KernelArg.U32((uint)n), KernelArg.U32((uint)rank), m, KernelArg.U32((uint)l.Args[5].Bits)],
                    (double)real / n, key, alloc);
            }
        }
    }
}

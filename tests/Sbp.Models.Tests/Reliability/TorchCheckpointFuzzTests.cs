using System.Diagnostics;
using Sbp.Models.Pretrained;

namespace Sbp.Models.Tests.Reliability;

/// <summary>
/// Seeded fuzzing of the PyTorch checkpoint reader: thousands of mutations of valid files (zip and legacy) — bit
/// flips, random bytes, truncations, and byte edits, splices and duplications aimed at the pickle — read with tight
/// <see cref="PthLimits"/>. Every read must return a consistent state dict or throw <see cref="PthFormatException"/>,
/// each within a timeout; any other exception, a hang or an inconsistent result fails the test with its seed.
/// </summary>
public class TorchCheckpointFuzzTests
{
    static readonly TimeSpan CallTimeout = TimeSpan.FromSeconds(10);
    static readonly PthLimits Tight = new(MaxFileBytes: 4 << 20, MaxPickleBytes: 1 << 20, MaxZipEntries: 10_000, MaxStack: 50_000,
        MaxMemo: 100_000, MaxStorageBytes: 16 << 20, MaxTensors: 10_000, MaxOutputBytes: 64 << 20);

    static byte[] Fixture(string name) => File.ReadAllBytes(Path.Combine(AppContext.BaseDirectory, "Fixtures", "Pth", name));

    /// <summary>Where a file's pickle lies (zip records are stored: data.pkl is in the file as it is; a legacy file starts with pickles).</summary>
    static (int Start, int Length) PickleRange(byte[] file)
    {
        if (file[0] != 0x50) return (0, Math.Min(file.Length, 2048));
        using var stream = new MemoryStream(file);
        var entry = ZipDirectory.Open(stream, "fuzz", PthLimits.Default).Entries.First(e => e.Name.EndsWith("data.pkl", StringComparison.Ordinal));
        return ((int)entry.DataOffset, (int)entry.Size);
    }

    static byte[] Mutate(byte[] valid, (int Start, int Length) pickle, Random rng)
    {
        var f = (byte[])valid.Clone();
        int At() => rng.Next(4) == 0 ? rng.Next(f.Length) : pickle.Start + rng.Next(pickle.Length);
        switch (rng.Next(7))
        {
            case 0:
                for (int i = 1 + rng.Next(4); i > 0; i--) f[At()] ^= (byte)(1 << rng.Next(8));
                return f;
            case 1:
                f[At()] = (byte)rng.Next(256);
                return f;
            case 2:
                return f[..rng.Next(f.Length)];
            case 3:
            {
                // An opcode byte from the pickle alphabet (and some outside it) at a pickle position.
                byte[] ops = [(byte)'(', (byte)')', (byte)']', (byte)'}', (byte)'R', (byte)'b', (byte)'Q', (byte)'s', (byte)'u', (byte)'a', (byte)'e', (byte)'t',
                    (byte)'h', (byte)'q', (byte)'c', (byte)'X', (byte)'K', (byte)'J', (byte)'M', 0x8a, 0x85, 0x86, 0x87, (byte)'.', (byte)'N', (byte)'i', (byte)'o', 0x93, 0x81, 0x95, 0xff];
                f[pickle.Start + rng.Next(pickle.Length)] = ops[rng.Next(ops.Length)];
                return f;
            }
            case 4:
            {
                // A 4-byte little-endian field (lengths, sizes, offsets) replaced by an odd value.
                int[] odd = [0, 1, -1, int.MaxValue, int.MinValue, 0x7fffffff - 3, 1 << 20, 255, 256, 65535];
                int at = pickle.Start + rng.Next(Math.Max(1, pickle.Length - 4));
                BitConverter.TryWriteBytes(f.AsSpan(at, 4), odd[rng.Next(odd.Length)]);
                return f;
            }
            case 5:
            {
                // Duplicate a run of pickle bytes over another place (repeated opcodes, shifted arguments).
                int len = 1 + rng.Next(16), from = pickle.Start + rng.Next(Math.Max(1, pickle.Length - len)), to = pickle.Start + rng.Next(Math.Max(1, pickle.Length - len));
                Array.Copy(valid, from, f, to, Math.Min(len, f.Length - to));
                return f;
            }
            default:
            {
                // Splice: drop a run from the pickle (the file keeps its length at the end: zero padding).
                int len = 1 + rng.Next(8), at = pickle.Start + rng.Next(Math.Max(1, pickle.Length - len));
                Array.Copy(valid, at + len, f, at, valid.Length - at - len);
                return f;
            }
        }
    }

    [TestCase("videomae-tiny.pth", 5000)]
    [TestCase("dtypes.pth", 5000)]
    [TestCase("dtypes-legacy.pth", 5000)]
    public void Mutated_checkpoints_are_read_or_refused(string name, int cases)
    {
        var valid = Fixture(name);
        var pickle = PickleRange(valid);
        int accepted = 0, refused = 0;
        var failures = new List<string>();
        var clock = Stopwatch.StartNew();
        for (int seed = 0; seed < cases && failures.Count < 5; seed++)
        {
            var bytes = Mutate(valid, pickle, new Random(seed));
            var read = Task.Run(() => TorchCheckpoint.Read(new MemoryStream(bytes), name, Tight));
            try
            {
                if (!read.Wait(CallTimeout)) { failures.Add($"seed {seed}: no answer within {CallTimeout.TotalSeconds} s"); break; }
                var ckpt = read.Result;
                foreach (var (key, t) in ckpt.Tensors)
                    if (t.Values.Length != t.Shape.Aggregate(1L, (a, b) => a * b)) failures.Add($"seed {seed}: '{key}' has {t.Values.Length} values for shape [{string.Join(", ", t.Shape)}]");
                accepted++;
            }
            catch (AggregateException e) when (e.InnerException is PthFormatException p)
            {
                if (!p.Message.StartsWith(name + ":", StringComparison.Ordinal)) failures.Add($"seed {seed}: a refusal without the file's name: {p.Message}");
                refused++;
            }
            catch (AggregateException e)
            {
                failures.Add($"seed {seed}: {e.InnerException!.GetType().Name}: {e.InnerException.Message}");
            }
        }
        TestContext.Out.WriteLine($"{name}: {accepted} read, {refused} refused, {failures.Count} failures, {clock.Elapsed.TotalSeconds:F1} s");
        Assert.That(failures, Is.Empty);
        Assert.That(refused, Is.GreaterThan(cases / 4), "most mutations break the file");
    }
}

using System.Diagnostics;
using System.Globalization;
using System.Text;

namespace Sbp.Autograd;

/// <summary>
/// Wall time per recorded op, for profiling a training step (set <see cref="Tape.Profile"/> before
/// the forward pass). Backward: each node's rule plus the accumulation of its input gradients
/// (SBP scatters included). Forward: the time since the previous recorded op (or
/// <see cref="Start"/>), which is the op itself plus the model code between ops. Rows group by op,
/// SBP region or not, and compact (kept positions only) or dense.
/// </summary>
public sealed class OpProfile
{
    public enum Phase { Forward, Backward }

    /// <summary>One row; <see cref="Internal"/>: engine work that is not a recorded op (SBP's eager gathers). <see cref="Macs"/>: the
    /// multiply-adds of its calls in this phase (<see cref="FlopCounter"/>).</summary>
    public sealed record Row(string Op, bool InRegion, bool Compact, Phase Phase, int Calls, double Milliseconds, bool Internal = false, long Macs = 0, long Bytes = 0)
    {
        /// <summary>Achieved GFLOP/s (2 FLOPs per multiply-add), 0 for rows without MACs.</summary>
        public double GigaflopsPerSecond => OpCost.Gigaflops(Macs, Milliseconds);

        /// <summary>Achieved GB/s of the bytes the calls read and write (<see cref="OpCost"/>), 0 for engine rows.</summary>
        public double GigabytesPerSecond => Milliseconds > 0 ? Bytes / (Milliseconds * 1e6) : 0;
    }

    /// <summary>Rows also split by the op's input shapes (one row per distinct call: which of a family's calls is slow).</summary>
    public bool ByShape { get; set; }

    readonly List<(TapeNode Node, Phase Phase, long Ticks)> _entries = [];
    readonly Func<long> _clock;
    readonly double _ticksPerSecond;
    long _last;

    /// <summary>Wall time (the stopwatch).</summary>
    public OpProfile() : this(Stopwatch.GetTimestamp, Stopwatch.Frequency) { }

    /// <summary>
    /// Any monotonic measure of work as the clock, in <paramref name="ticksPerSecond"/>: the GPU timeline model passes the
    /// modeled device time of the work issued so far, which makes every row a modeled time.
    /// </summary>
    public OpProfile(Func<long> clock, double ticksPerSecond)
    {
        _clock = clock;
        _ticksPerSecond = ticksPerSecond;
        _last = clock();
    }

    /// <summary>The clock's reading (where a timed piece of work starts).</summary>
    public long Now() => _clock();

    /// <summary>Starts the forward clock (call right before the forward pass).</summary>
    public void Start() => _last = _clock();

    internal void AddForward(TapeNode node)
    {
        long now = _clock();
        _entries.Add((node, Phase.Forward, now - _last));
        _last = now;
    }

    internal void Add(TapeNode node, Phase phase, long started) => _entries.Add((node, phase, _clock() - started));

    readonly List<(string Name, Phase Phase, long Ticks)> _internal = [];

    /// <summary>Engine work between ops (SBP's gathers as ops record): its own row, and not counted in the next op's forward time.</summary>
    internal void AddInternal(string name, Phase phase, long started)
    {
        long now = _clock();
        _internal.Add((name, phase, now - started));
        if (phase == Phase.Forward) _last = now;
    }

    /// <summary>Each entry with the work its node does in its phase, counted once (<see cref="FlopCounter"/>).</summary>
    List<(TapeNode Node, Phase Phase, double Ms, long Macs, long Bytes)> Counted() =>
        [.. _entries.Select(e =>
        {
            var (macs, bytes) = FlopCounter.Of(e.Node).InPhase(e.Phase);
            return (e.Node, e.Phase, e.Ticks * 1000.0 / _ticksPerSecond, macs, bytes);
        })];

    /// <summary>Totals per (op, in a region, compact, phase), largest first.</summary>
    public IReadOnlyList<Row> Rows() =>
        Counted().GroupBy(e => (Op: ByShape ? $"{e.Node.Op} {string.Join(" ", e.Node.InputShapes)}" : e.Node.Op, InRegion: e.Node.Region is not null, e.Node.IsCompact, e.Phase))
            .Select(g => new Row(g.Key.Op, g.Key.InRegion, g.Key.IsCompact, g.Key.Phase, g.Count(), g.Sum(e => e.Ms), Macs: g.Sum(e => e.Macs), Bytes: g.Sum(e => e.Bytes)))
            .Concat(_internal.GroupBy(e => (e.Name, e.Phase))
                .Select(g => new Row(g.Key.Name, true, true, g.Key.Phase, g.Count(), g.Sum(e => e.Ticks) * 1000.0 / _ticksPerSecond, Internal: true)))
            .OrderByDescending(r => r.Milliseconds).ToList();

    /// <summary>One SBP region's recorded ops in one phase (<see cref="RegionRows"/>); <see cref="Region"/> null: the ops outside regions.</summary>
    public sealed record RegionRow(string? Region, Phase Phase, int Calls, double Milliseconds, long Macs)
    {
        public double GigaflopsPerSecond => OpCost.Gigaflops(Macs, Milliseconds);
    }

    /// <summary>Totals per (SBP region by name, phase) of the recorded ops, in the order the regions ran; the ops outside regions last.</summary>
    public IReadOnlyList<RegionRow> RegionRows() =>
        Counted().GroupBy(e => (e.Node.Region, e.Phase))
            .Select(g => new RegionRow(g.Key.Region, g.Key.Phase, g.Count(), g.Sum(e => e.Ms), g.Sum(e => e.Macs)))
            .OrderBy(r => r.Region is null).ThenBy(r => r.Phase).ToList();

    /// <summary>A plain-text table of <see cref="Rows"/> (top <paramref name="top"/> per phase), then one line per SBP region.</summary>
    public string Format(int top = 25)
    {
        var sb = new StringBuilder();
        var all = Rows();
        foreach (var phase in new[] { Phase.Forward, Phase.Backward })
        {
            var rows = all.Where(r => r.Phase == phase).ToList();
            double ms = rows.Sum(r => r.Milliseconds);
            long macs = rows.Sum(r => r.Macs);
            sb.Append(CultureInfo.InvariantCulture, $"{phase}: {ms:F1} ms over {rows.Where(r => !r.Internal).Sum(r => r.Calls)} ops, {macs / 1e9:F3} GMAC ({OpCost.Gigaflops(macs, ms):F1} GFLOP/s over the phase)\n");
            foreach (var r in rows.Take(top))
            {
                sb.Append(CultureInfo.InvariantCulture, $"  {r.Op,-32} {(r.Internal ? "engine" : r.InRegion ? (r.Compact ? "region, compact" : "region, dense") : "outside regions"),-16} {r.Calls,5} x {r.Milliseconds,8:F2} ms");
                if (r.Macs > 0) sb.Append(CultureInfo.InvariantCulture, $"  {r.Macs / 1e9,8:F3} GMAC {r.GigaflopsPerSecond,7:F1} GFLOP/s");
                else if (r.Bytes > 0) sb.Append(CultureInfo.InvariantCulture, $"  {r.Bytes / 1e6,8:F1} MB   {r.GigabytesPerSecond,7:F1} GB/s");
                sb.Append('\n');
            }
        }
        var regions = RegionRows();
        if (regions.Any(r => r.Region is not null))
        {
            sb.Append("Per region (forward | backward; recorded ops only):\n");
            foreach (var g in regions.GroupBy(r => r.Region))
            {
                RegionRow? f = g.FirstOrDefault(r => r.Phase == Phase.Forward), b = g.FirstOrDefault(r => r.Phase == Phase.Backward);
                string Part(RegionRow? r) => r is null ? "-" : string.Create(CultureInfo.InvariantCulture, $"{r.Milliseconds,8:F2} ms {r.Macs / 1e9,7:F3} GMAC {r.GigaflopsPerSecond,6:F1} GFLOP/s");
                sb.Append(CultureInfo.InvariantCulture, $"  {g.Key ?? "(outside regions)",-32} {Part(f)} | {Part(b)}\n");
            }
        }
        return sb.ToString();
    }
}

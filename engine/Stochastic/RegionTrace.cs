using Sbp.Autograd;
using Sbp.Tensors;

namespace Sbp.Stochastic;

/// <summary>
/// The record of one SBP region while its body runs: where the region dimension sits in every
/// tensor made from the region input (<see cref="PositionLayout"/>), the plan of every op, and the
/// nodes it recorded. <see cref="Analyze"/> decides which nodes can run backward on compact tensors
/// (their output gradient is zero at dropped positions), gathers what they saved to the kept
/// positions and records the region output node that masks the incoming gradient.
/// </summary>
internal sealed class RegionTrace : IRecordObserver
{

    readonly Dictionary<long, PositionLayout> _layouts = [];
    readonly Dictionary<long, NodePlan> _plans = [];
    readonly Dictionary<(long Block, Shape Shape, PositionLayout Layout), Tensor> _gathered = [];
    readonly List<EagerHint>? _hints;   // null: compact when the body returns; else eager, with the hints still matching the ops seen
    readonly List<string> _ops = [];     // the body's fingerprint so far (op and output shape per recorded node)
    readonly HashSet<long> _wholeBlocks = [];
    readonly Dictionary<long, List<(TapeNode Node, int Slot, Shape Shape, PositionLayout Layout)>> _gatheredFrom = [];   // source block -> compact copies saved
    readonly HashSet<long> _fullBlocks = [];

    RegionTrace(Tape tape, string name, RegionOptions options, PositionLayout input, int firstNode, IReadOnlyList<EagerHint>? hints)
    {
        _hints = hints?.ToList();
        Tape = tape;
        Name = name;
        Options = options;
        InputLayout = input;
        FirstNode = firstNode;
    }

    /// <summary>The region whose body runs on this thread now, if any (the tape's observer).</summary>
    public static RegionTrace? Current => Tape.Observer as RegionTrace;

    public Tape Tape { get; }
    public string Name { get; }
    public RegionOptions Options { get; }
    public PositionLayout InputLayout { get; }
    public int FirstNode { get; }
    public List<TapeNode> Nodes { get; } = [];

    /// <summary>
    /// Eager compaction is on: every node whose output carries the region dimension has its saved
    /// tensors gathered to the kept positions as soon as it is recorded (except the nodes a matching
    /// <see cref="EagerHint"/> names), so the body never holds a full-size copy for backward.
    /// This guesses that the node will run compact; <see cref="EagerGuessWrong"/> checks the guesses
    /// after <see cref="Analyze"/>.
    /// </summary>
    public bool Eager => _hints is not null;

    /// <summary>Record indices (in <see cref="Nodes"/>) of the nodes compacted eagerly.</summary>
    public HashSet<int> EagerNodes { get; } = [];

    /// <summary>What the region's ops saved (or, not recording, would have saved) before any compaction: full backprop's bytes.</summary>
    public long FullSavedBytes { get; private set; }

    /// <summary>True while every op seen can run on the kept slice alone (recompute mode may then save only kept inputs).</summary>
    public bool SliceSafe { get; private set; } = true;

    /// <summary>Why the region cannot be re-run on the kept slice (first reason), for the report.</summary>
    public string? NotSliceSafeBecause { get; private set; }

    /// <summary>Starts tracing region <paramref name="name"/> on <paramref name="tape"/> (its <paramref name="options"/>) from
    /// <paramref name="input"/>, whose region dimension sits as <paramref name="layout"/> says.</summary>
    /// <param name="tape">The tape the region's ops record on.</param>
    /// <param name="name">The region's name, for reports and errors.</param>
    /// <param name="options">The region's mode and keep.</param>
    /// <param name="input">The region input.</param>
    /// <param name="layout">Where the region dimension sits in the input.</param>
    /// <param name="hints">null: compact at <see cref="Analyze"/> only; otherwise compact eagerly every
    /// node but those a hint matching the recorded ops names (see <see cref="Eager"/>).</param>
    public static RegionTrace Begin(Tape tape, string name, RegionOptions options, Tensor input, PositionLayout layout, IReadOnlyList<EagerHint>? hints = null)
    {
        if (Current is { } outer)
            throw new SbpRegionException($"SBP region '{name}' was started inside region '{outer.Name}'; regions do not nest. End the outer region first.");
        var trace = new RegionTrace(tape, name, options, layout, tape.Nodes.Count, hints);
        trace._layouts[input.Id] = layout;
        Tape.Observer = trace;
        return trace;
    }

    /// <summary>Stops tracing (the body returned or threw).</summary>
    public void End()
    {
        if (Tape.Observer == this) Tape.Observer = null;
    }

    /// <summary>
    /// Compacts the nodes <see cref="Analyze"/> marked compact that were not compacted eagerly, then
    /// lets go of the trace's handles on its gathers (the tape holds its own).
    /// </summary>
    public void CompactRest()
    {
        foreach (var n in Nodes)
            if (!n.IsCompact)
                foreach (var t in n.SavedTensors)
                    if (t is not null) _wholeBlocks.Add(t.Block.Id);
        for (int i = 0; i < Nodes.Count; i++)
            if (Nodes[i].IsCompact && !EagerNodes.Contains(i) && PlanOf(Nodes[i]) is { } plan) Gather(Nodes[i], plan);
        ReleaseGathers();
    }

    /// <summary>Disposes the trace's handles on gathered tensors (the tape holds views of its own).</summary>
    public void ReleaseGathers()
    {
        foreach (var g in _gathered.Values) g.Dispose();
        _gathered.Clear();
    }

    public PositionLayout? LayoutOf(Tensor t) => _layouts.GetValueOrDefault(t.Id);

    public NodePlan? PlanOf(TapeNode node) => _plans.GetValueOrDefault(node.OutputId);

    /// <summary>
    /// Called for every op while the body runs (recorded or not): propagates the layout to the
    /// output with the op's rule. Returns the plan when an input carries the region dimension.
    /// </summary>
    object? IRecordObserver.OnOp(string op, Tensor output, Tensor[] inputs, Tensor?[] save, IOpRule? rule) => OnOp(op, output, inputs, save, rule as SbpRule);

    void IRecordObserver.OnRecorded(TapeNode node, object? plan) => OnRecorded(node, plan as NodePlan);

    public NodePlan? OnOp(string op, Tensor output, Tensor[] inputs, Tensor?[] save, SbpRule? rule)
    {
        var layouts = new PositionLayout?[inputs.Length];
        bool any = false;
        for (int i = 0; i < inputs.Length; i++)
            if (_layouts.TryGetValue(inputs[i].Id, out var l)) { layouts[i] = l; any = true; }
        if (!any) return null;
        var input = new RuleInput(Name, op, inputs, layouts, output, save);
        var plan = (rule ?? SbpRule.Refuse("the op has no SBP rule")).Plan(input);
        if (plan.Output is { } o) _layouts[output.Id] = o;
        if (!Tape.IsGradEnabled) FullSavedBytes += SavedTensorStore.CountedBytes(save, _fullBlocks);
        if (!plan.SliceSafe && SliceSafe)
        {
            SliceSafe = false;
            NotSliceSafeBecause = $"{op} reads positions outside the kept slice";
        }
        return plan;
    }

    /// <summary>Remembers the plan of a node recorded on the tape for the analysis at <see cref="Analyze"/>.</summary>
    public void OnRecorded(TapeNode node, NodePlan? plan)
    {
        Nodes.Add(node);
        _ops.Add($"{node.Op} {node.OutputShape}");
        FullSavedBytes += SavedTensorStore.CountedBytes(node.SavedTensors, _fullBlocks);
        int index = Nodes.Count - 1;
        // Hints for other bodies (another fingerprint) stop applying at the first op that differs.
        _hints?.RemoveAll(h => index >= h.Ops.Length || h.Ops[index] != _ops[index]);
        if (plan is null) return;
        _plans[node.OutputId] = plan;
        if (!Eager) return;
        if (_hints!.Count > 0 && _hints[0].Dense.Contains(index))
        {
            foreach (var t in node.SavedTensors)
                if (t is not null && _wholeBlocks.Add(t.Block.Id)) ShareWhole(t);
        }
        else if (plan.Output is not null)
        {
            long t0 = Tape.Profile?.Now() ?? 0;
            Gather(node, plan);
            EagerNodes.Add(index);
            Tape.Profile?.AddInternal("sbp.gather (eager)", OpProfile.Phase.Forward, t0);
        }
    }

    /// <summary>
    /// Replaces every saved tensor of <paramref name="node"/> that carries the region dimension by its
    /// kept positions (a block shared by several nodes is gathered once). A tensor that a node of the
    /// region keeps whole stays whole here too and is gathered when backward reads it: a compact copy
    /// beside the whole one would only add memory.
    /// </summary>
    public void Gather(TapeNode node, NodePlan plan)
    {
        for (int s = 0; s < plan.Saved.Length && s < node.SavedTensors.Length; s++)
        {
            var l = plan.Saved[s];
            var t = node.SavedTensors[s];
            if (l is null || t is null || l.KeepsAll) continue;
            if (_wholeBlocks.Contains(t.Block.Id))
            {
                node.DeferGather(s, l);
                continue;
            }
            var key = (t.Block.Id, t.Shape, l);
            if (!_gathered.TryGetValue(key, out var g))
            {
                // the widening of a 16-bit tensor (autocast): its kept positions gathered from the 16-bit tensor, exact and half the bytes
                using var narrow = l.Axis < t.Rank - 1 && t.Shape[-1] % 2 == 0 ? Tape.Store.ExactNarrow(t) : null;
                _gathered[key] = g = SbpRegion.Gather(Tape, narrow ?? t, l, forLater: true);
            }
            if (!_gatheredFrom.TryGetValue(t.Block.Id, out var users)) _gatheredFrom[t.Block.Id] = users = [];
            users.Add((node, s, t.Shape, l));
            Tape.ReplaceSaved(node, s, g);
        }
    }

    /// <summary>
    /// A node kept whole saves <paramref name="whole"/>: nodes recorded earlier that saved a compact copy of
    /// the same tensor switch to reading the whole one (gathered when backward needs it), as if the
    /// whole one had been known when they ran, so a body costs the same whatever order its ops record in.
    /// </summary>
    void ShareWhole(Tensor whole)
    {
        if (!_gatheredFrom.Remove(whole.Block.Id, out var users)) return;
        foreach (var (node, slot, shape, layout) in users)
        {
            if (shape != whole.Shape || node.IsFreed) continue;
            Tape.ReplaceSaved(node, slot, whole);
            node.DeferGather(slot, layout);
        }
    }

    /// <summary>
    /// After <see cref="Analyze"/>: true when an eagerly compacted node turned out to need its full
    /// saved tensors (its output gradient is dense).
    /// </summary>
    public bool EagerGuessWrong => EagerNodes.Any(i => !Nodes[i].IsCompact);

    /// <summary>After <see cref="Analyze"/>: the hint that would have guessed right (the dense nodes of this body).</summary>
    public EagerHint DenseHint() => new([.. _ops], Enumerable.Range(0, Nodes.Count).Where(i => !Nodes[i].IsCompact).ToHashSet());

    /// <summary>
    /// Backward sparsity analysis, in reverse record order: a node runs compact when its output has
    /// a layout and every consumer hands back a compact gradient in that same layout (the region
    /// output does, by definition). Returns the compact output layout per node output id.
    /// </summary>
    public Dictionary<long, PositionLayout> Analyze(Tensor output, PositionLayout outputLayout)
    {
        var consumers = new Dictionary<long, List<(TapeNode Node, int Input)>>();
        foreach (var n in Nodes)
            for (int j = 0; j < n.Inputs.Length; j++)
            {
                if (!consumers.TryGetValue(n.Inputs[j].Id, out var list)) consumers[n.Inputs[j].Id] = list = [];
                list.Add((n, j));
            }
        var compact = new Dictionary<long, PositionLayout>();
        var mode = new Dictionary<TapeNode, NodePlan>();
        for (int i = Nodes.Count - 1; i >= 0; i--)
        {
            var n = Nodes[i];
            if (!_plans.TryGetValue(n.OutputId, out var plan)) continue;
            var lo = plan.Output;
            if (lo is null) continue;
            var users = consumers.GetValueOrDefault(n.OutputId) ?? [];
            bool isOutput = n.OutputId == output.Id;
            if (!isOutput && users.Count == 0) continue;
            if (isOutput && !lo.Equals(outputLayout)) continue;
            bool allCompact = users.All(u => mode.TryGetValue(u.Node, out var up) && lo.Equals(up.Inputs[u.Input]));
            if (!allCompact) continue;
            mode[n] = plan;
            compact[n.OutputId] = lo;
        }
        foreach (var (n, plan) in mode) n.SetCompact(plan.Inputs, plan.CompactBackward);
        return compact;
    }
}

using Sbp.Memory;
using Sbp.Tensors;

namespace Sbp.Autograd;

/// <summary>
/// The tensors a tape holds for backward and their exact byte count. The one counting rule: a saved
/// tensor counts the bytes of its memory block when the block is an activation (category Temporary;
/// parameters are referenced, not counted), and a block counts once however many tensors and nodes
/// hold it. Held tensors are views the store owns, marked as saved in their pool (category SavedActivation).
/// </summary>
internal sealed class SavedTensorStore
{
    readonly Dictionary<long, int> _holders = [];   // counted block id -> nodes holding it

    /// <summary>Activation bytes held now (each shared block once).</summary>
    public long Bytes { get; private set; }

    /// <summary>Most bytes held at once.</summary>
    public long PeakBytes { get; private set; }

    /// <summary>The bytes of the counted blocks of <paramref name="tensors"/> not yet in <paramref name="seen"/> (adding them): the counting rule.</summary>
    public static long CountedBytes(IEnumerable<Tensor?> tensors, HashSet<long> seen)
    {
        long bytes = 0;
        foreach (var t in tensors)
            if (t is not null && Counts(t.Block) && seen.Add(t.Block.Id)) bytes += t.Block.Bytes;
        return bytes;
    }

    internal static bool Counts(MemoryBlock block) => block.BaseCategory == MemoryCategory.Temporary;

    /// <summary>Holds a node's saved tensors; returns the held views and the node's bytes (its distinct counted blocks).</summary>
    public (Tensor?[] Held, long Bytes) HoldAll(Tensor?[] save)
    {
        var held = new Tensor?[save.Length];
        var counted = new HashSet<long>();
        long bytes = 0;
        for (int i = 0; i < save.Length; i++)
        {
            var s = save[i];
            if (s is null) continue;
            held[i] = Hold(s);
            if (!Counts(s.Block) || !counted.Add(s.Block.Id)) continue;
            bytes += s.Block.Bytes;
            Retain(s.Block);
        }
        NotePeak();
        return (held, bytes);
    }

    /// <summary>Replaces saved slot <paramref name="slot"/> of <paramref name="node"/> (the old view released), keeping the counts exact.</summary>
    public void Replace(TapeNode node, int slot, Tensor replacement)
    {
        var old = node.SavedTensors[slot] ?? throw new InvalidOperationException($"{node.Op}: saved slot {slot} is empty.");
        var held = Hold(replacement);
        long bytes = node.SavedBytes;
        bool SoleHolder(MemoryBlock b) => Counts(b) && !node.SavedTensors.Where((t, i) => i != slot && t is not null && t.Block.Id == b.Id).Any();
        if (SoleHolder(old.Block))
        {
            Release(old.Block);
            bytes -= old.Block.Bytes;
        }
        if (SoleHolder(held.Block))
        {
            Retain(held.Block);
            bytes += held.Block.Bytes;
        }
        old.Block.Pool.SetSavedHold(old.Block, -1);
        old.Dispose();
        node.ReplaceSaved(slot, held, bytes);
        NotePeak();
    }

    // packed copies by source block, so an activation saved by several nodes is packed once (valid while both live)
    readonly Dictionary<MemoryBlock, (MemoryBlock Packed, DType DType)> _packed = new(ReferenceEqualityComparer.Instance);

    /// <summary>
    /// Replaces each Float32 activation <paramref name="node"/> holds by a <paramref name="dtype"/> copy (the counts
    /// follow: the copy's bytes instead of the source's); <see cref="BackwardContext.Saved"/> widens it again.
    /// </summary>
    public void Pack(TapeNode node, DType dtype)
    {
        if (KeptInFloat32.Contains(node.Op)) return;
        for (int s = 0; s < node.SavedTensors.Length; s++)
        {
            var t = node.SavedTensors[s];
            if (t is null || t.DType != DType.Float32 || !Counts(t.Block)) continue;
            // t holds its block, so a key found is live; the packed copy may have been freed since (its last holder gone)
            var packed = ExactNarrow(t);
            if (packed is not null && packed.DType != dtype)
            {
                packed.Dispose();
                packed = null;
            }
            if (packed is null && _packed.TryGetValue(t.Block, out var known) && known.DType == dtype && !known.Packed.IsFreed)
                packed = Tensor.OverBlock(known.Packed, t.Shape, dtype, t.Device);
            if (packed is null)
            {
                packed = Ops.CastTo("saved " + dtype, t, dtype).DetachFromScope();
                _packed[t.Block] = (packed.Block, dtype);
            }
            using (packed) Replace(node, s, packed);
        }
    }

    // exact 16-bit forms of Float32 blocks that are widenings of 16-bit tensors (autocast), apart from the rounded copies
    // of _packed: Pack uses both, PackKnown and the SBP gathers only these
    readonly Dictionary<MemoryBlock, (MemoryBlock Narrow, DType DType)> _exact = new(ReferenceEqualityComparer.Instance);

    /// <summary>Records that <paramref name="wide"/> holds the exact widening of <paramref name="narrow"/> (a 16-bit block).</summary>
    public void NoteNarrow(MemoryBlock wide, MemoryBlock narrow, DType dtype) => _exact[wide] = (narrow, dtype);

    /// <summary>The 16-bit tensor whose exact widening <paramref name="t"/> is (a new handle), or null when none is known.</summary>
    public Tensor? ExactNarrow(Tensor t)
    {
        if (t.DType != DType.Float32 || !_exact.TryGetValue(t.Block, out var known)) return null;
        if (!known.Narrow.IsFreed) return Tensor.OverBlock(known.Narrow, t.Shape, known.DType, t.Device);
        _exact.Remove(t.Block);
        return null;
    }

    /// <summary>
    /// Replaces each saved Float32 activation of <paramref name="node"/> whose 16-bit form is known exactly (the widening
    /// of a 16-bit tensor, <see cref="NoteNarrow"/>) by that form: no rounding, half the bytes.
    /// </summary>
    public void PackKnown(TapeNode node)
    {
        if (_exact.Count == 0) return;
        for (int s = 0; s < node.SavedTensors.Length; s++)
        {
            var t = node.SavedTensors[s];
            if (t is null || !Counts(t.Block)) continue;
            using var narrow = ExactNarrow(t);
            if (narrow is not null) Replace(node, s, narrow);
        }
    }

    /// <summary>
    /// Batch norm and the losses keep their saved tensors in Float32, as autocast keeps them in float32: batch norm's
    /// backward subtracts the batch mean of the exact input, which rounding the input alone would spoil where the
    /// mean is large against the spread. (Layer norm is packed: its backward recomputes the row statistics from the
    /// rounded input.)
    /// </summary>
    static readonly HashSet<string> KeptInFloat32 = new(StringComparer.Ordinal) { "batch_norm", "cross_entropy", "binary_cross_entropy_with_logits", "mse_loss" };

    /// <summary>Releases what <paramref name="node"/> holds (once).</summary>
    public void Free(TapeNode node)
    {
        if (node.IsFreed) return;
        var seen = new HashSet<long>();
        foreach (var t in node.SavedTensors)
            if (t is not null && Counts(t.Block) && seen.Add(t.Block.Id)) Release(t.Block);
        node.FreeSaved();
    }

    /// <summary>Holds a tensor outside any node (an SBP index buffer) and counts all of its bytes.</summary>
    public void HoldExtra(Tensor t)
    {
        t.Block.Pool.SetSavedHold(t.Block, +1);
        Bytes += t.Block.Bytes;
        NotePeak();
    }

    /// <summary>Releases a tensor of <see cref="HoldExtra"/> and disposes it.</summary>
    public void ReleaseExtra(Tensor t)
    {
        t.Block.Pool.SetSavedHold(t.Block, -1);
        Bytes -= t.Block.Bytes;
        t.Dispose();
    }

    static Tensor Hold(Tensor t)
    {
        var view = t.View(t.Shape, register: false);
        view.Block.Pool.SetSavedHold(view.Block, +1);
        return view;
    }

    void Retain(MemoryBlock block)
    {
        int n = _holders.GetValueOrDefault(block.Id) + 1;
        _holders[block.Id] = n;
        if (n == 1) Bytes += block.Bytes;
    }

    void Release(MemoryBlock block)
    {
        if (!_holders.TryGetValue(block.Id, out int n)) return;
        if (n == 1)
        {
            _holders.Remove(block.Id);
            Bytes -= block.Bytes;
        }
        else _holders[block.Id] = n - 1;
    }

    void NotePeak() => PeakBytes = Math.Max(PeakBytes, Bytes);
}

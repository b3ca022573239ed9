namespace Sbp.Benchmarks.Training;

/// <summary>Per-region saved bytes of one SBP region after the forward pass (FullSavedBytes: the same nodes before compaction).</summary>
public sealed record RegionBytes(string Name, string Mode, int Kept, int Size, long SavedBytes, long? FullSavedBytes);

/// <summary>
/// One measured training-step configuration. <see cref="StepMs"/>: median over the timed steps
/// (forward, loss, backward, AdamW step); <see cref="PeakBytes"/>: the device pool's peak over the
/// timed steps (parameters, gradients, optimizer state, inputs, activations, workspace);
/// <see cref="SavedActivationBytes"/>: Tape.SavedBytes after the forward pass;
/// <see cref="ParamBytes"/>: parameter bytes (gradients and the two AdamW moments are 3x that).
/// </summary>
public sealed record StepResult(StepCase Case, string Mode, double Keep, double StepMs, double MinStepMs, double[] StepsMs,
    long PeakBytes, long SavedActivationBytes, long IndexBytes, long ParamBytes, double Loss, IReadOnlyList<RegionBytes> Regions,
    string? Error = null)
{
    /// <summary>Median forward (with the loss), backward and AdamW (with zeroing the gradients) times of the timed steps.</summary>
    public double ForwardMs { get; init; }
    public double BackwardMs { get; init; }
    public double OptimizerMs { get; init; }

    /// <summary>The step's multiply-adds, counted on the tape after the first timed forward pass (<see cref="Autograd.FlopCounter"/>).</summary>
    public Autograd.OpCost Cost { get; init; }

    /// <summary>Counted FLOPs (2 per multiply-add) over the median step, in GFLOP/s.</summary>
    public double GigaflopsPerSecond => Autograd.OpCost.Gigaflops(Cost.Macs, StepMs);

    /// <summary>Nodes on the tape after the forward pass.</summary>
    public int TapeNodes { get; init; }

    /// <summary>Saved activations as a share of the peak.</summary>
    public double SavedShareOfPeak => PeakBytes == 0 ? 0 : (double)SavedActivationBytes / PeakBytes;
}

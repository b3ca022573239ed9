using Sbp.Autograd;
using Sbp.Nn;
using Sbp.Stochastic;
using Sbp.Tensors;

namespace Sbp.Models.Architectures;

/// <summary>
/// A video model that runs with or without SBP: one implementation, the policy decides. With a
/// null policy the forward records ordinary backprop; with a policy its regions draw their keep
/// masks from <c>policy.Masks</c> for the given training step. The forward values never depend on
/// the policy (docs/SBP.md section 1).
/// </summary>
public abstract class VideoModel(Device? device) : Module(device)
{
    /// <summary>The config the model was built from (e.g. "swin-t").</summary>
    public abstract string ConfigName { get; }

    /// <summary>The shape of one input sample the config is meant for (without the batch axis).</summary>
    public abstract int[] SampleShape { get; }

    /// <summary>Number of output classes.</summary>
    public abstract int NumClasses { get; }

    /// <summary>True when the model reads frames first, [B, T, C, H, W] (a per-frame 2-D backbone); else clips [B, C, T, H, W].</summary>
    public virtual bool FramesFirst => false;

    /// <summary>True when the model predicts a class per frame (logits [B, T, K]) and trains on per-frame labels [B, T]; else one class per clip.</summary>
    public virtual bool PerFrameLabels => false;

    /// <summary>The model's input from a batch of clips [B, C, T, H, W] as the loaders give them (a view or one permute).</summary>
    public Tensor InputOf(Tensor clips)
    {
        ArgumentNullException.ThrowIfNull(clips);
        return FramesFirst ? Ops.Permute(clips, 0, 2, 1, 3, 4) : Ops.Reshape(clips, clips.Shape.ToArray());
    }

    /// <summary>True when the model must see a first batch (<see cref="Calibrate"/>) before training from scratch.</summary>
    public virtual bool NeedsCalibration => false;

    /// <summary>
    /// Sets from a first batch of inputs (<see cref="InputOf"/>) what a model trained from scratch needs from
    /// data before its first step (the frame detector's frozen batch-norm statistics); nothing by default.
    /// </summary>
    public virtual void Calibrate(Tensor inputs) { }

    /// <summary>Where the model puts its SBP regions: on block outputs (the default) or on residual branches.</summary>
    public virtual SbpPlacement SbpPlacement => SbpPlacement.BlockOutput;

    /// <summary>The mask kind the model draws when none is asked for: strided over frames by default.</summary>
    public virtual MaskKind DefaultMaskKind(double keep) => MaskKind.Strided;

    /// <summary>The model on x with SBP regions per <paramref name="sbp"/> (null: plain backprop), masks drawn for <paramref name="step"/>.</summary>
    public abstract Tensor Forward(Tensor x, SbpPolicy? sbp, long step);

    /// <summary>
    /// Why the model's SBP regions cannot run <paramref name="policy"/> on clips of its <see cref="SampleShape"/>
    /// (null when they can): checked before training, with the rules the regions apply, so a run does not
    /// fail at its first step.
    /// </summary>
    public virtual string? SbpProblem(SbpPolicy policy) => null;

    /// <summary>Plain backprop: <c>Forward(x, null, 0)</c>.</summary>
    public override Tensor Forward(Tensor x) => Forward(x, null, 0);

    /// <summary>Parameter counts per part and in total.</summary>
    public abstract ModelSummary Summary();

    /// <summary>Parameter counts, and the forward multiply-adds for <paramref name="batch"/> clips of <see cref="SampleShape"/> (<see cref="CountForward"/>).</summary>
    public ModelSummary Summary(int batch) => Summary().WithForward(CountForward(batch), [batch, .. SampleShape]);

    /// <summary>
    /// The multiply-adds of one forward pass on <paramref name="batch"/> clips of <see cref="SampleShape"/> (zeros, evaluation
    /// mode, no SBP), and of the backward pass it records: <see cref="FlopCounter"/> over the tape. The mode is restored.
    /// The pass runs for real: Video Swin-T at 32 x 224² takes about 20 s and 3.6 GB on 2 CPU cores.
    /// </summary>
    public OpCost CountForward(int batch = 1)
    {
        if (batch < 1) throw new ArgumentOutOfRangeException(nameof(batch), $"{ConfigName}.CountForward: the batch must be at least 1, got {batch}.");
        bool training = Training;
        Eval();
        try
        {
            using var scope = TensorScope.Begin();
            using var tape = Tape.Begin();
            Forward(Tensor.Zeros(new Shape([batch, .. SampleShape]), Device), null, 0);
            return FlopCounter.Of(tape);
        }
        finally
        {
            if (training) Train();
        }
    }
}

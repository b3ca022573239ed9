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
}

using Sbp.Nn;
using Sbp.Tensors;

namespace Sbp.Models.Architectures;

/// <summary>
/// One Video Swin stage (BasicLayer): "blocks.j" and, for all but the last stage, "downsample"
/// (patch merging). The model drives the blocks itself (each may be an SBP region); Forward runs
/// the stage with plain backprop.
/// </summary>
public sealed class SwinStage : Module
{
    public SwinStage(IEnumerable<SwinBlock3d> blocks, PatchMerging3d? downsample, Device? device = null) : base(device)
    {
        var list = new Sequential(device);
        foreach (var b in blocks) list.Append(b);
        BlockList = RegisterModule("blocks", list);
        Blocks = list.Layers.Cast<SwinBlock3d>().ToList();
        if (downsample is not null) Downsample = RegisterModule("downsample", downsample);
    }

    Sequential BlockList { get; }
    public IReadOnlyList<SwinBlock3d> Blocks { get; }
    public PatchMerging3d? Downsample { get; }

    public override Tensor Forward(Tensor x)
    {
        using var scope = TensorScope.Begin();
        var h = BlockList.Forward(x);
        return scope.Keep(Downsample is null ? h : Downsample.Forward(h));
    }
}

using System.Text.Json.Nodes;
using static TorchSharp.torch;

namespace Sbp.Tools.ReferenceFixtures;

/// <summary>One model family at one configuration, written as a function over its state dict.</summary>
internal interface IReferenceModel
{
    /// <summary>Family name stored as the "model" metadata (video-swin, videomae, resnet, r2plus1d).</summary>
    string Family { get; }

    /// <summary>The official code this implementation follows (stored as the "source" metadata).</summary>
    string Source { get; }

    /// <summary>The configuration, with exactly the keys the tests read (stored as the "config" metadata).</summary>
    JsonObject Config { get; }

    /// <summary>Whether the model has BatchNorm (then the fixture records bn_mode).</summary>
    bool HasBatchNorm { get; }

    /// <summary>Input shape: [B, C, T, H, W] for video models, [B, C, H, W] for images.</summary>
    long[] InputShape { get; }

    int NumClasses { get; }

    /// <summary>Parameters whose largest-gradient element gets a finite-difference check (besides the input).</summary>
    IReadOnlyList<string> ProbeParameters { get; }

    /// <summary>Declares every state-dict entry under its official name, in state_dict() order.</summary>
    void Declare(ParamStore p);

    /// <summary>Logits [B, K] for an input in the layout of <see cref="InputShape"/>.</summary>
    Tensor Forward(ParamStore p, Tensor input, bool train);

    /// <summary>Model-specific checks of the declared state (throws on failure); prints what it checked.</summary>
    void SelfCheck(ParamStore p);
}

using Sbp.Tensors;

namespace Sbp.Backends;

/// <summary>
/// The sizes of an attention call over B x H entries: q [B, H, N, D], k [B, H, M, D], v [B, H, M, Dv],
/// scores and probabilities [B, H, N, M], output [B, H, N, Dv]. WindowMask: the mask is Swin's window
/// form [G, h, N, M] (B a multiple of G; entry b uses plane b mod G) rather than broadcast to the scores.
/// </summary>
public readonly record struct AttentionSpec(int B, int H, int N, int M, int D, int Dv, float Scale, bool WindowMask)
{
    public int Entries => B * H;
    public Shape Scores => new(B, H, N, M);
}

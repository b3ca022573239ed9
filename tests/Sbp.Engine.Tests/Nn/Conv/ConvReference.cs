using Sbp.Engine.Tests.Support;

namespace Sbp.Engine.Tests.Nn.Conv;

/// <summary>
/// Direct float64 convolution: the seven loops of the definition (sample, output channel, three
/// output axes; input channel of the group, three kernel axes) with bounds checks for padding.
/// The backward is the same loop nest with the adjoint accumulations.
/// </summary>
static class ConvReference
{
    /// <summary>Calls tap(yIndex, xIndex, wIndex) for every product of the convolution, all arrays flat row-major.</summary>
    static void ForEachTap(int[] x, int[] w, int[] stride, int[] pad, int[] dil, int groups, out int[] yShape, Action<int, int, int>? tap)
    {
        int n = x[0], c = x[1], o = w[0], cg = w[1];
        if (c / groups != cg) throw new ArgumentException("reference: weight does not fit");
        var inp = x[2..];
        var k = w[2..];
        var outSize = new int[3];
        for (int a = 0; a < 3; a++) outSize[a] = (inp[a] + 2 * pad[a] - dil[a] * (k[a] - 1) - 1) / stride[a] + 1;
        yShape = [n, o, .. outSize];
        if (tap is null) return;
        int og = o / groups;
        for (int b = 0; b < n; b++)
        for (int oc = 0; oc < o; oc++)
        for (int ot = 0; ot < outSize[0]; ot++)
        for (int oh = 0; oh < outSize[1]; oh++)
        for (int ow = 0; ow < outSize[2]; ow++)
        {
            int yi = (((b * o + oc) * outSize[0] + ot) * outSize[1] + oh) * outSize[2] + ow;
            int g = oc / og;
            for (int ci = 0; ci < cg; ci++)
            for (int kt = 0; kt < k[0]; kt++)
            for (int kh = 0; kh < k[1]; kh++)
            for (int kw = 0; kw < k[2]; kw++)
            {
                int it = ot * stride[0] - pad[0] + kt * dil[0];
                int ih = oh * stride[1] - pad[1] + kh * dil[1];
                int iw = ow * stride[2] - pad[2] + kw * dil[2];
                if (it < 0 || it >= inp[0] || ih < 0 || ih >= inp[1] || iw < 0 || iw >= inp[2]) continue;
                int xi = ((((b * c) + g * cg + ci) * inp[0] + it) * inp[1] + ih) * inp[2] + iw;
                int wi = (((oc * cg + ci) * k[0] + kt) * k[1] + kh) * k[2] + kw;
                tap(yi, xi, wi);
            }
        }
    }

    public static RefTensor Conv3d(RefTensor x, RefTensor w, RefTensor? b, int[] stride, int[] pad, int[] dil, int groups)
    {
        ForEachTap(x.Shape, w.Shape, stride, pad, dil, groups, out var yShape, null);
        var y = RefTensor.Zeros(yShape);
        int perChannel = yShape[2] * yShape[3] * yShape[4];
        if (b is not null)
            for (int i = 0; i < y.Data.Length; i++) y.Data[i] = b.Data[i / perChannel % yShape[1]];
        ForEachTap(x.Shape, w.Shape, stride, pad, dil, groups, out _, (yi, xi, wi) => y.Data[yi] += x.Data[xi] * w.Data[wi]);
        return y;
    }

    /// <summary>dx and dw of sum(dy * conv(x, w)).</summary>
    public static (RefTensor Dx, RefTensor Dw) Conv3dBackward(RefTensor x, RefTensor w, RefTensor dy, int[] stride, int[] pad, int[] dil, int groups)
    {
        var dx = RefTensor.Zeros(x.Shape);
        var dw = RefTensor.Zeros(w.Shape);
        ForEachTap(x.Shape, w.Shape, stride, pad, dil, groups, out _, (yi, xi, wi) =>
        {
            dx.Data[xi] += dy.Data[yi] * w.Data[wi];
            dw.Data[wi] += dy.Data[yi] * x.Data[xi];
        });
        return (dx, dw);
    }

    /// <summary>A 2-D operand [A, B, H, W] as [A, B, 1, H, W], and 2-D arguments (h, w) as (1 or 0, h, w).</summary>
    public static RefTensor To5(RefTensor t) => new(t.Data, [t.Shape[0], t.Shape[1], 1, t.Shape[2], t.Shape[3]]);
    public static RefTensor To4(RefTensor t) => new(t.Data, [t.Shape[0], t.Shape[1], t.Shape[3], t.Shape[4]]);
    public static int[] Args3(int[] a, int t) => [t, .. a];

    public static RefTensor Conv2d(RefTensor x, RefTensor w, RefTensor? b, int[] stride, int[] pad, int[] dil, int groups) =>
        To4(Conv3d(To5(x), To5(w), b, Args3(stride, 1), Args3(pad, 0), Args3(dil, 1), groups));
}

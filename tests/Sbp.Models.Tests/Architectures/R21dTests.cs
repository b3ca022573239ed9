using Sbp.Models.Architectures;

namespace Sbp.Models.Tests.Architectures;

/// <summary>The (2+1)-D network: parameter counts from a per-layer formula, shapes, summary.</summary>
public sealed class R21dTests : ModelTestBase
{
    /// <summary>conv k (with bias) from cin to cout: cin * cout * k + cout.</summary>
    static long Conv(int cin, int cout, int k) => (long)cin * cout * k + cout;

    static long Expected(R21dConfig c)
    {
        long n = Conv(c.SampleShape[0], c.StemWidth, 27);
        int cin = c.StemWidth;
        foreach (var w in c.Widths)
        {
            n += Conv(cin, w, 9) + Conv(w, w, 9) + Conv(w, w, 3);
            cin = w;
        }
        return n + (long)cin * c.NumClasses + c.NumClasses;
    }

    [TestCase("r21d-micro")]
    [TestCase("r21d-nano")]
    public void ParameterCountMatchesThePerLayerFormula(string name)
    {
        var model = (R21dNet)Build(name);
        Assert.That(model.ParameterCount(), Is.EqualTo(Expected(model.Config)));
        Assert.That(model.Summary().Total, Is.EqualTo(model.ParameterCount()));
    }

    [Test]
    public void MicroHasTheDocumentedSize() => Assert.That(Expected(R21dConfig.R21dMicro), Is.EqualTo(86_600));
}

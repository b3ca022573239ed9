using Sbp.Autograd;

namespace Sbp.Engine.Tests.Autograd;

public class NoGradScopeTests
{
    [Test]
    public void ADefaultScopeDisposesWithoutChangingRecording()
    {
        // `using var s = cond ? default : Tape.NoGrad();` must not switch recording off for good.
        using (default(Tape.NoGradScope)) { }
        Assert.That(Tape.IsGradEnabled, Is.True);
        using (Tape.NoGrad()) Assert.That(Tape.IsGradEnabled, Is.False);
        Assert.That(Tape.IsGradEnabled, Is.True);
    }
}

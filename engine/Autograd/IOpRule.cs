namespace Sbp.Autograd;

/// <summary>
/// What an op declares about itself besides its backward rule, for the observer of the recording
/// (<see cref="IRecordObserver"/>: SBP's region rules, <c>Sbp.Stochastic.SbpRule</c>). The tape only passes it on.
/// </summary>
public interface IOpRule
{
}

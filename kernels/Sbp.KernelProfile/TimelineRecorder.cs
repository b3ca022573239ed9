using Sbp.Autograd;
using Sbp.Backends.Cuda;
using Sbp.Tensors;

namespace Sbp.KernelProfile;

/// <summary>
/// A device on which a step is recorded, not run (<see cref="RecordingCudaApi"/>): build the model on
/// <see cref="Device"/>, <see cref="Start"/>, set <see cref="Phase"/> as the step goes, <see cref="Stop"/>, then
/// <see cref="StepTimeline.Model"/>.
/// </summary>
public sealed class TimelineRecorder
{
    readonly RecordingCudaApi _api;

    /// <param name="name">the device's name.</param>
    /// <param name="memoryBytes">the device memory the pool may reserve (a high-water mark: freed blocks stay counted).</param>
    public TimelineRecorder(string name = "cuda-model", long memoryBytes = 1L << 40)
    {
        _api = new RecordingCudaApi(memoryBytes);
        Device = CudaDevices.Create(name, _api);
    }

    public Device Device { get; }
    public string Phase { get => _api.Phase; set => _api.Phase = value; }
    public IReadOnlyList<RecordedLaunch> Launches => _api.Launches;
    public IReadOnlyList<RecordedCall> Calls => _api.Calls;
    /// <summary>Host reads of device memory while recording (each one a stall on a GPU).</summary>
    public int HostSyncs => _api.HostSyncs;

    /// <summary>
    /// An op profile whose clock is the modeled GPU time of everything recorded so far: set as the recorded step's
    /// <see cref="Tape.Profile"/>, its rows are each tape op's modeled time (forward: the launches since the previous op;
    /// backward: each node's rule and gradient accumulation).
    /// </summary>
    public OpProfile ModeledProfile(GpuSpec gpu, LaunchSampler sampler)
    {
        int launches = 0, calls = 0;
        double seconds = 0;
        return new OpProfile(() =>
        {
            seconds += StepTimeline.ModelItems(_api.Launches.Skip(launches), _api.Calls.Skip(calls), gpu, sampler).Sum(i => i.Seconds);
            (launches, calls) = (_api.Launches.Count, _api.Calls.Count);
            return (long)Math.Round(seconds * 1e9);
        }, 1e9);
    }

    public void Start() => _api.Recording = true;
    public void Stop() => _api.Recording = false;
}

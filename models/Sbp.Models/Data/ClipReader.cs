namespace Sbp.Models.Data;

/// <summary>
/// Draws a clip's frames with a sampler and reads them from a frame source. When the source finds that the
/// video has fewer decodable frames than its header said (<see cref="FrameCountException"/>), the clip is
/// drawn again among the real frames with the same random stream. Once the count is known (later in the run,
/// or from the store in later runs) every draw is made among the real frames, the same in every run.
/// </summary>
public static class ClipReader
{
    /// <summary>The clip, the frame indices it holds and what the source knows of the video.</summary>
    public static (VideoClip Clip, int[] Indices, VideoInfo Info) Read(IFrameSource source, string path, ClipSampler sampler, SampleRng? rng, int shortSide)
    {
        for (int attempt = 0; ; attempt++)
        {
            var (info, indices) = Draw(source, path, sampler, rng);
            try
            {
                return (source.Read(path, indices, shortSide), indices, info);
            }
            catch (FrameCountException) when (attempt == 0) { } // the source now knows the real count
        }
    }

    /// <summary>The frames a clip of <paramref name="path"/> takes (without reading them).</summary>
    public static (VideoInfo Info, int[] Indices) Draw(IFrameSource source, string path, ClipSampler sampler, SampleRng? rng)
    {
        var info = source.Probe(path);
        return (info, sampler.Sample(info.Frames, rng?.Fork(StreamOfFrames)));
    }

    /// <summary>The random stream (of a sample's generator) that picks the frames.</summary>
    internal const long StreamOfFrames = 7;
}

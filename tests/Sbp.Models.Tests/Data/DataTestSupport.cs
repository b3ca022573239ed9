using Sbp.Models.Data;

namespace Sbp.Models.Tests.Data;

/// <summary>Temporary folders and small fixtures shared by the data tests.</summary>
static class DataTestSupport
{
    public static string TempDir(string name)
    {
        var dir = Path.Combine(Path.GetTempPath(), $"sbp-data-tests-{name}-{Guid.NewGuid():N}");
        Directory.CreateDirectory(dir);
        return dir;
    }

    public static void Delete(string? dir)
    {
        if (dir is not null && Directory.Exists(dir)) Directory.Delete(dir, recursive: true);
    }

    /// <summary>
    /// Skips the test with the reason when ffmpeg/ffprobe are not installed, or fails it when
    /// SBP_REQUIRE_FFMPEG=1 (CI sets it, so a failed install cannot hide the video tests).
    /// </summary>
    public static void RequireFfmpeg()
    {
        if (FfmpegTools.IsAvailable) return;
        if (Environment.GetEnvironmentVariable("SBP_REQUIRE_FFMPEG") == "1")
            Assert.Fail($"SBP_REQUIRE_FFMPEG=1 but {FfmpegTools.MissingReason}");
        Assert.Ignore(FfmpegTools.MissingReason!);
    }

    public static SyntheticActions SmallActions(int count = 32, int classes = 8, DataSplit split = DataSplit.Train, int frames = 8, int size = 16, ulong seed = 3) =>
        new(new SyntheticActionsOptions { Count = count, Classes = classes, Frames = frames, Height = size, Width = size, Seed = seed }, split);

    /// <summary>A clip whose pixel (t, y, x, c) is a known function of its position, for layout tests.</summary>
    public static VideoClip Ramp(int frames, int height, int width)
    {
        var clip = new VideoClip(frames, height, width);
        for (int t = 0; t < frames; t++)
            for (int y = 0; y < height; y++)
                for (int x = 0; x < width; x++)
                    for (int c = 0; c < 3; c++)
                        clip.Data[((t * height + y) * width + x) * 3 + c] = RampValue(t, y, x, c);
        return clip;
    }

    public static byte RampValue(int t, int y, int x, int c) => (byte)((t * 37 + y * 11 + x * 5 + c * 71) % 256);
}

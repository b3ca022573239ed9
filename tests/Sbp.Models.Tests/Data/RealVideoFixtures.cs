using System.Diagnostics;
using Sbp.Models.Data;

namespace Sbp.Models.Tests.Data;

/// <summary>
/// Small video files the tests make with ffmpeg in several codecs and containers (no fixture is committed),
/// and an independent reference decode: ffmpeg from frame 0 with the trim filter, no seeking.
/// </summary>
static class RealVideoFixtures
{
    /// <summary>A 4 s, 15 fps test pattern (60 frames) of 96x64 with a moving part, keyframes every 24 frames where the codec has them.</summary>
    public const string Pattern = "testsrc2=size=96x64:rate=15:duration=4";
    public const int PatternFrames = 60;

    /// <summary>Codec cases: file name and the ffmpeg arguments after the inputs. Audio where the container takes it.</summary>
    public static readonly (string File, string[] Args, bool Audio)[] Codecs =
    [
        ("h264-bframes.mp4", ["-c:v", "libx264", "-bf", "3", "-g", "24", "-pix_fmt", "yuv420p", "-c:a", "aac", "-shortest"], true),
        ("mpeg4.avi", ["-c:v", "mpeg4", "-g", "24", "-q:v", "4", "-c:a", "mp2", "-shortest"], true),
        ("msmpeg4v3.avi", ["-c:v", "msmpeg4", "-g", "24", "-q:v", "4"], false),
        ("cinepak.avi", ["-c:v", "cinepak"], false),
        // colour tags the scaler must honour as ffmpeg's scale filter does: BT.709 limited range, and full-range JPEG
        ("h264-bt709.mkv", ["-c:v", "libx264", "-g", "24", "-pix_fmt", "yuv420p", "-colorspace", "bt709", "-color_primaries", "bt709", "-color_trc", "bt709", "-color_range", "tv"], false),
        ("mjpeg-full-range.avi", ["-c:v", "mjpeg", "-pix_fmt", "yuvj422p", "-q:v", "3"], false),
        // MPEG-TS starts its clock at 1.4 s (seeks are relative to the file's start); HEVC 10-bit (a 16-bit pixel format)
        ("h264.ts", ["-c:v", "libx264", "-bf", "2", "-g", "24", "-pix_fmt", "yuv420p", "-c:a", "mp2", "-shortest"], true),
        ("hevc-10bit.mp4", ["-c:v", "libx265", "-x265-params", "log-level=error:keyint=24:min-keyint=24:bframes=3", "-pix_fmt", "yuv420p10le", "-tag:v", "hvc1"], false),
        ("vp9.webm", ["-c:v", "libvpx-vp9", "-g", "24", "-deadline", "realtime", "-cpu-used", "8", "-b:v", "300k", "-c:a", "libopus", "-shortest"], true),
    ];

    /// <summary>Runs ffmpeg with the arguments; returns false (with stderr) when it fails, e.g. an encoder missing from this build.</summary>
    public static bool Ffmpeg(out string error, params string[] args)
    {
        (int code, _, error) = Run(["-y", .. args]);
        return code == 0;
    }

    /// <summary>Runs ffmpeg quietly: exit code, standard output and standard error.</summary>
    static (int Code, byte[] Output, string Error) Run(string[] args)
    {
        var psi = new ProcessStartInfo(Path.Combine(FfmpegTools.Require(), "ffmpeg")) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var a in (string[])["-v", "error", "-nostdin", .. args]) psi.ArgumentList.Add(a);
        using var p = Process.Start(psi)!;
        var err = p.StandardError.ReadToEndAsync();
        using var ms = new MemoryStream();
        p.StandardOutput.BaseStream.CopyTo(ms);
        p.WaitForExit();
        return (p.ExitCode, ms.ToArray(), err.Result);
    }

    /// <summary>Makes a codec case in <paramref name="dir"/>; null when this ffmpeg cannot encode it.</summary>
    public static string? Make(string dir, (string File, string[] Args, bool Audio) codec)
    {
        string path = Path.Combine(dir, codec.File);
        string[] inputs = codec.Audio ? ["-f", "lavfi", "-i", Pattern, "-f", "lavfi", "-i", "sine=frequency=440:duration=4"] : ["-f", "lavfi", "-i", Pattern];
        return Ffmpeg(out _, [.. inputs, .. codec.Args, path]) ? path : null;
    }

    /// <summary>Frames first..last of a video decoded from its start (trim filter, no seek), at <paramref name="height"/> x <paramref name="width"/>, rgb24.</summary>
    public static byte[] ReferenceFrames(string path, int first, int last, int height, int width)
    {
        var (code, frames, error) = Run(["-threads", "1", "-i", path, "-map", "0:v:0", "-vf",
            $"trim=start_frame={first}:end_frame={last + 1},scale={width}:{height}:flags=area,format=rgb24", "-vsync", "0", "-f", "rawvideo", "-"]);
        Assert.That(code, Is.Zero, error);
        return frames;
    }

    /// <summary>
    /// A cinepak AVI whose index and header say 90 frames (6 s at 15 fps) but whose data after the first 40%
    /// is zeroed, so only the first frames decode: the header lies, as in files from the wild.
    /// </summary>
    public static string LyingHeader(string dir)
    {
        string path = Path.Combine(dir, "lying-header.avi");
        Assert.That(Ffmpeg(out var e, "-f", "lavfi", "-i", "testsrc2=size=160x120:rate=15:duration=6", "-c:v", "cinepak", path), e);
        var bytes = File.ReadAllBytes(path);
        int index = bytes.AsSpan().LastIndexOf("idx1"u8);
        Assert.That(index, Is.GreaterThan(0), "the AVI has an index");
        Array.Clear(bytes, (int)(bytes.Length * 0.4), index - (int)(bytes.Length * 0.4));
        File.WriteAllBytes(path, bytes);
        return path;
    }
}

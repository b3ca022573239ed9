using System.Runtime.InteropServices;

namespace Sbp.Models.Data;

/// <summary>
/// FFmpeg's own libraries (libavformat, libavcodec, libavutil, libswscale) called in process, so a clip is decoded
/// without starting a program and its pre-roll can skip frames nothing refers to (<see cref="LibavDecoder"/>).
/// Only an ABI whose struct offsets were checked against its headers is used: FFmpeg 5.1 (lavf 59, lavc 59,
/// lavu 57, swscale 6; Debian 12). Anything else (other versions, a static ffmpeg, no shared libraries) leaves
/// <see cref="Shared"/> null and <see cref="UnavailableReason"/> says why; the ffmpeg program is used then.
/// </summary>
internal sealed unsafe class Libav
{
    // Struct offsets, FFmpeg 5.1 on 64-bit platforms (offsetof against the libav*-dev 5.1 headers).
    public const int FormatNbStreams = 44, FormatStreams = 48, FormatStartTime = 64;
    public const int StreamIndex = 0, StreamTimeBase = 16, StreamDiscard = 52, StreamCodecpar = 208;
    public const int ParCodecType = 0, ParWidth = 56, ParHeight = 60;
    public const int PacketPts = 8, PacketStreamIndex = 36;
    public const int FrameData = 0, FrameLinesize = 64, FrameWidth = 104, FrameHeight = 108, FrameFormat = 116;
    public const int FrameColorRange = 320, FrameColorSpace = 332, FrameBestEffortTimestamp = 344;

    public const int MediaVideo = 0, PixRgb24 = 2, SwsArea = 0x20;
    public const int DiscardDefault = 0, DiscardNonRef = 8, DiscardAll = 48;
    public const int ErrorAgain = -11, ErrorEof = -0x20464F45; // AVERROR(EAGAIN), AVERROR_EOF on Linux
    public const long NoPts = long.MinValue; // AV_NOPTS_VALUE
    public const long TimeBase = 1_000_000; // AV_TIME_BASE

    static readonly (string Name, int Major)[] Libraries = [("avutil", 57), ("swscale", 6), ("avcodec", 59), ("avformat", 59)];
    static readonly Lazy<(Libav? Api, string? Why)> Loaded = new(Load);

    /// <summary>The bound libraries, or null (see <see cref="UnavailableReason"/>).</summary>
    public static Libav? Shared => AskedForProgram ? null : Loaded.Value.Api;

    /// <summary>Why <see cref="Shared"/> is null; null when the libraries are in use.</summary>
    public static string? UnavailableReason => AskedForProgram ? "SBP_VIDEO_DECODER=process" : Loaded.Value.Why;

    static bool AskedForProgram => Environment.GetEnvironmentVariable("SBP_VIDEO_DECODER") == "process";

    /// <summary>SBP_VIDEO_DECODER is unset, empty, "auto" (the default) or "process"; anything else is refused by value.</summary>
    public static void CheckSetting()
    {
        var v = Environment.GetEnvironmentVariable("SBP_VIDEO_DECODER");
        if (v is null or "" or "auto" or "process") return;
        throw new ArgumentException($"SBP_VIDEO_DECODER='{v}' is not a decoder setting: use 'process' (always the ffmpeg program) or 'auto' " +
            "(FFmpeg's libraries in process where they can be used, the default).");
    }

    public delegate* unmanaged<IntPtr*, byte*, IntPtr, IntPtr, int> OpenInput;
    public delegate* unmanaged<IntPtr, IntPtr, int> FindStreamInfo;
    public delegate* unmanaged<IntPtr, int, int, int, IntPtr*, int, int> FindBestStream;
    public delegate* unmanaged<IntPtr, int, long, long, long, int, int> SeekFile;
    public delegate* unmanaged<IntPtr, IntPtr, int> ReadFrame;
    public delegate* unmanaged<IntPtr*, void> CloseInput;
    public delegate* unmanaged<IntPtr, IntPtr> AllocContext;
    public delegate* unmanaged<IntPtr, IntPtr, int> ParametersToContext;
    public delegate* unmanaged<IntPtr, IntPtr, IntPtr, int> Open;
    public delegate* unmanaged<IntPtr, IntPtr, int> SendPacket;
    public delegate* unmanaged<IntPtr, IntPtr, int> ReceiveFrame;
    public delegate* unmanaged<IntPtr*, void> FreeContext;
    public delegate* unmanaged<IntPtr> PacketAlloc;
    public delegate* unmanaged<IntPtr, void> PacketUnref;
    public delegate* unmanaged<IntPtr*, void> PacketFree;
    public delegate* unmanaged<IntPtr> FrameAlloc;
    public delegate* unmanaged<IntPtr*, void> FrameFree;
    public delegate* unmanaged<IntPtr, byte*, long, int, int> OptSetInt;
    public delegate* unmanaged<int, byte*, nuint, int> StrError;
    public delegate* unmanaged<IntPtr, int, int, int, int, int, int, int, IntPtr, IntPtr, IntPtr, IntPtr> GetCachedScaler;
    public delegate* unmanaged<IntPtr, byte**, int*, int, int, byte**, int*, int> Scale;
    public delegate* unmanaged<IntPtr, void> FreeScaler;
    public delegate* unmanaged<int, int*> Coefficients;
    public delegate* unmanaged<IntPtr, int**, int*, int**, int*, int*, int*, int*, int> GetColorspace;
    public delegate* unmanaged<IntPtr, int*, int, int*, int, int, int, int, int> SetColorspace;

    /// <summary>av_strerror's text for an FFmpeg error code.</summary>
    public string ErrorText(int code)
    {
        byte* buffer = stackalloc byte[128];
        return StrError(code, buffer, 128) == 0 ? Marshal.PtrToStringUTF8((IntPtr)buffer) ?? $"error {code}" : $"error {code}";
    }

    /// <summary>Sets an integer AVOption (e.g. a codec context's "threads" or "skip_frame").</summary>
    public int SetOption(IntPtr obj, string name, long value)
    {
        var utf8 = System.Text.Encoding.UTF8.GetBytes(name + "\0");
        fixed (byte* p = utf8) return OptSetInt(obj, p, value, 0);
    }

    static (Libav?, string?) Load()
    {
        var handles = new Dictionary<string, IntPtr>();
        foreach (var (name, major) in Libraries)
        {
            IntPtr handle = IntPtr.Zero;
            string[] candidates = [$"lib{name}.so.{major}", $"lib{name}.{major}.dylib", $"{name}-{major}.dll"];
            if (!candidates.Any(c => NativeLibrary.TryLoad(c, out handle)))
                return (null, $"lib{name} {major} (FFmpeg 5.1's shared libraries) not found");
            var version = (delegate* unmanaged<uint>)Export(handle, $"{name}_version");
            if (version is null || version() >> 16 != major)
                return (null, $"lib{name} is not major version {major}");
            handles[name] = handle;
        }
        var api = new Libav();
        IntPtr f = handles["avformat"], c = handles["avcodec"], u = handles["avutil"], s = handles["swscale"];
        api.OpenInput = (delegate* unmanaged<IntPtr*, byte*, IntPtr, IntPtr, int>)Export(f, "avformat_open_input");
        api.FindStreamInfo = (delegate* unmanaged<IntPtr, IntPtr, int>)Export(f, "avformat_find_stream_info");
        api.FindBestStream = (delegate* unmanaged<IntPtr, int, int, int, IntPtr*, int, int>)Export(f, "av_find_best_stream");
        api.SeekFile = (delegate* unmanaged<IntPtr, int, long, long, long, int, int>)Export(f, "avformat_seek_file");
        api.ReadFrame = (delegate* unmanaged<IntPtr, IntPtr, int>)Export(f, "av_read_frame");
        api.CloseInput = (delegate* unmanaged<IntPtr*, void>)Export(f, "avformat_close_input");
        api.AllocContext = (delegate* unmanaged<IntPtr, IntPtr>)Export(c, "avcodec_alloc_context3");
        api.ParametersToContext = (delegate* unmanaged<IntPtr, IntPtr, int>)Export(c, "avcodec_parameters_to_context");
        api.Open = (delegate* unmanaged<IntPtr, IntPtr, IntPtr, int>)Export(c, "avcodec_open2");
        api.SendPacket = (delegate* unmanaged<IntPtr, IntPtr, int>)Export(c, "avcodec_send_packet");
        api.ReceiveFrame = (delegate* unmanaged<IntPtr, IntPtr, int>)Export(c, "avcodec_receive_frame");
        api.FreeContext = (delegate* unmanaged<IntPtr*, void>)Export(c, "avcodec_free_context");
        api.PacketAlloc = (delegate* unmanaged<IntPtr>)Export(c, "av_packet_alloc");
        api.PacketUnref = (delegate* unmanaged<IntPtr, void>)Export(c, "av_packet_unref");
        api.PacketFree = (delegate* unmanaged<IntPtr*, void>)Export(c, "av_packet_free");
        api.FrameAlloc = (delegate* unmanaged<IntPtr>)Export(u, "av_frame_alloc");
        api.FrameFree = (delegate* unmanaged<IntPtr*, void>)Export(u, "av_frame_free");
        api.OptSetInt = (delegate* unmanaged<IntPtr, byte*, long, int, int>)Export(u, "av_opt_set_int");
        api.StrError = (delegate* unmanaged<int, byte*, nuint, int>)Export(u, "av_strerror");
        api.GetCachedScaler = (delegate* unmanaged<IntPtr, int, int, int, int, int, int, int, IntPtr, IntPtr, IntPtr, IntPtr>)Export(s, "sws_getCachedContext");
        api.Scale = (delegate* unmanaged<IntPtr, byte**, int*, int, int, byte**, int*, int>)Export(s, "sws_scale");
        api.FreeScaler = (delegate* unmanaged<IntPtr, void>)Export(s, "sws_freeContext");
        api.Coefficients = (delegate* unmanaged<int, int*>)Export(s, "sws_getCoefficients");
        api.GetColorspace = (delegate* unmanaged<IntPtr, int**, int*, int**, int*, int*, int*, int*, int>)Export(s, "sws_getColorspaceDetails");
        api.SetColorspace = (delegate* unmanaged<IntPtr, int*, int, int*, int, int, int, int, int>)Export(s, "sws_setColorspaceDetails");
        if (api.OpenInput is null || api.FindStreamInfo is null || api.FindBestStream is null || api.SeekFile is null || api.ReadFrame is null ||
            api.CloseInput is null || api.AllocContext is null || api.ParametersToContext is null || api.Open is null || api.SendPacket is null ||
            api.ReceiveFrame is null || api.FreeContext is null || api.PacketAlloc is null || api.PacketUnref is null || api.PacketFree is null ||
            api.FrameAlloc is null || api.FrameFree is null || api.OptSetInt is null || api.StrError is null || api.GetCachedScaler is null ||
            api.Scale is null || api.FreeScaler is null || api.Coefficients is null || api.GetColorspace is null || api.SetColorspace is null)
            return (null, "an FFmpeg 5.1 library lacks a function the decoder calls");
        // errors come back as return codes and our messages; the libraries' own log lines would interleave with progress
        var setLevel = (delegate* unmanaged<int, void>)Export(u, "av_log_set_level");
        if (setLevel is not null) setLevel(-8); // AV_LOG_QUIET
        return (api, null);
    }

    static void* Export(IntPtr library, string name) => NativeLibrary.TryGetExport(library, name, out var address) ? (void*)address : null;
}

namespace Sbp.Models.Data;

/// <summary>
/// Decodes a range of a file's first video stream in process (<see cref="Libav"/>), with the ffmpeg program's
/// rules as <see cref="FfmpegVideoSource"/> runs it: after a seek to <c>seekSeconds</c> (from the file's start
/// time) frames shown before it are dropped, then frames are counted in display order, the first
/// <c>skip</c> passed over, and the wanted ones among the next <c>count</c> scaled (area) to rgb24.
/// Pre-roll: packets shown before the seek point that no other frame refers to are not decoded at all
/// (skip_frame = nonref), which halves the frames decoded between a key frame and the clip for B-frame video.
/// </summary>
internal static unsafe class LibavDecoder
{
    /// <summary>Largest frame decoded in process (8192 x 8192): a header claiming more goes to the ffmpeg program, whose memory is its own.</summary>
    public const long MaxPixels = 8192L * 8192;

    /// <summary>
    /// What one decode gave: the wanted frames decoded (in <c>Pixels</c>, rgb24, in offset order), every frame counted
    /// in the range, and the frames decoded before the seek point and dropped (the pre-roll that could not be skipped).
    /// </summary>
    public readonly record struct Result(byte[] Pixels, int Wanted, int Counted, int PreRoll);

    /// <param name="frameRate">The video's rate: a first frame more than one frame after the seek point means the seek overshot.</param>
    /// <param name="av">The bound libraries.</param>
    /// <param name="path">The video file.</param>
    /// <param name="seekSeconds">Where to seek (from the file's start time); null: decode from the start.</param>
    /// <param name="skip">Frames passed over after the seek point before the range starts.</param>
    /// <param name="count">Frames in the range.</param>
    /// <param name="offsets">Wanted frames as offsets into the range, ascending (empty: only count).</param>
    /// <param name="height">Output height.</param>
    /// <param name="width">Output width.</param>
    /// <param name="failure">Why nothing was decoded.</param>
    /// <returns>The frames, or null with <paramref name="failure"/> when the file cannot be opened or has no decodable video stream.</returns>
    public static Result? Decode(Libav av, string path, double frameRate, double? seekSeconds, int skip, int count, int[] offsets, int height, int width, out string? failure)
    {
        // A container without an index (MPEG-TS, MPEG-PS) seeks by searching timestamps and may land after the key
        // frame before the clip: then seek earlier, and at last decode from the start, dropping the same frames.
        double[] earlier = seekSeconds is null ? [0] : [0, 1, 4, 16];
        foreach (double back in earlier)
        {
            double? target = seekSeconds is double s ? s - back : null;
            var result = DecodeOnce(av, path, frameRate, seekSeconds, target > 0 ? target : null, skip, count, offsets, height, width, out failure, out bool overshot);
            if (!overshot || target <= 0) return result;
        }
        return DecodeOnce(av, path, frameRate, seekSeconds, null, skip, count, offsets, height, width, out failure, out _);
    }

    static Result? DecodeOnce(Libav av, string path, double frameRate, double? seekSeconds, double? seekTo, int skip, int count, int[] offsets, int height, int width,
        out string? failure, out bool overshot)
    {
        failure = null;
        overshot = false;
        IntPtr format = IntPtr.Zero, context = IntPtr.Zero, packet = IntPtr.Zero, frame = IntPtr.Zero, scaler = IntPtr.Zero;
        try
        {
            // "file:" so a list entry is always a local file, never a protocol ("http:", "concat:", ...) libavformat would follow
            var name = System.Text.Encoding.UTF8.GetBytes("file:" + Path.GetFullPath(path) + "\0");
            int rc;
            fixed (byte* p = name) rc = av.OpenInput(&format, p, IntPtr.Zero, IntPtr.Zero);
            if (rc < 0) { failure = $"libavformat cannot open it ({av.ErrorText(rc)})"; return null; }
            if ((rc = av.FindStreamInfo(format, IntPtr.Zero)) < 0) { failure = $"libavformat cannot read its streams ({av.ErrorText(rc)})"; return null; }
            IntPtr codec;
            int index = av.FindBestStream(format, Libav.MediaVideo, -1, -1, &codec, 0);
            if (index < 0 || codec == IntPtr.Zero) { failure = index < 0 ? $"no decodable video stream ({av.ErrorText(index)})" : "no decoder for its video stream"; return null; }
            var streams = *(IntPtr**)(format + Libav.FormatStreams);
            int streamCount = *(int*)(format + Libav.FormatNbStreams);
            IntPtr stream = streams[index], parameters = *(IntPtr*)(stream + Libav.StreamCodecpar);
            int tbNum = *(int*)(stream + Libav.StreamTimeBase), tbDen = *(int*)(stream + Libav.StreamTimeBase + 4);
            if (*(int*)(stream + Libav.StreamIndex) != index || parameters == IntPtr.Zero || *(int*)(parameters + Libav.ParCodecType) != Libav.MediaVideo || tbNum <= 0 || tbDen <= 0)
                throw new LibavLayoutException(path);
            long area = (long)*(int*)(parameters + Libav.ParWidth) * *(int*)(parameters + Libav.ParHeight);
            if (area > MaxPixels) { failure = $"frames of {area} pixels are over the in-process limit of {MaxPixels}"; return null; }
            double timeBase = (double)tbNum / tbDen;
            long start = *(long*)(format + Libav.FormatStartTime);
            double startSeconds = start == Libav.NoPts ? 0 : (double)start / Libav.TimeBase;
            for (int i = 0; i < streamCount; i++)
                if (i != index) *(int*)(streams[i] + Libav.StreamDiscard) = Libav.DiscardAll; // audio is not even demuxed

            context = av.AllocContext(codec);
            if (context == IntPtr.Zero || av.ParametersToContext(context, parameters) < 0) { failure = "libavcodec cannot set up its decoder"; return null; }
            av.SetOption(context, "threads", 1); // the loader's workers give the parallelism
            if ((rc = av.Open(context, codec, IntPtr.Zero)) < 0) { failure = $"libavcodec cannot open its decoder ({av.ErrorText(rc)})"; return null; }
            if (seekTo is double seek)
            {
                long target = (long)Math.Round(seek * Libav.TimeBase) + (start == Libav.NoPts ? 0 : start);
                av.SeekFile(format, -1, long.MinValue, target, target, 0); // as ffmpeg -ss: on failure decode from where it is
            }

            packet = av.PacketAlloc();
            frame = av.FrameAlloc();
            int frameBytes = checked(height * width * 3);
            var pixels = new byte[checked(offsets.Length * frameBytes)];
            int counted = 0, wanted = 0, preRoll = 0, discard = Libav.DiscardDefault;
            bool done = count <= 0, flushed = false;
            while (!done)
            {
                if (!flushed)
                {
                    rc = av.ReadFrame(format, packet);
                    if (rc < 0) { flushed = true; av.SendPacket(context, IntPtr.Zero); }
                    else if (*(int*)(packet + Libav.PacketStreamIndex) != index) { av.PacketUnref(packet); continue; }
                    else
                    {
                        // a packet shown before the seek point is decoded only if later frames refer to it
                        long pts = *(long*)(packet + Libav.PacketPts);
                        int want = seekSeconds is double s && pts != Libav.NoPts && pts * timeBase - startSeconds < s ? Libav.DiscardNonRef : Libav.DiscardDefault;
                        if (want != discard) av.SetOption(context, "skip_frame", discard = want);
                        av.SendPacket(context, packet); // a damaged packet is passed over, as the ffmpeg program does
                        av.PacketUnref(packet);
                    }
                }
                while (!done && (rc = av.ReceiveFrame(context, frame)) >= 0)
                {
                    long shown = *(long*)(frame + Libav.FrameBestEffortTimestamp);
                    double time = shown == Libav.NoPts ? double.NaN : shown * timeBase - startSeconds;
                    if (seekSeconds is double s && time < s) { preRoll++; continue; }
                    if (seekTo is not null && counted == 0 && preRoll == 0 && time > seekSeconds + 1.0 / frameRate)
                    {
                        overshot = true; // the first frame comes after the one wanted: the frames between were never decoded
                        return null;
                    }
                    int offset = counted++ - skip;
                    if (offset < 0) continue;
                    if (offset >= count) { done = true; break; }
                    if (wanted < offsets.Length && offsets[wanted] == offset)
                        scaler = ScaleInto(av, scaler, frame, pixels.AsSpan(wanted++ * frameBytes, frameBytes), height, width, path);
                    if (offset == count - 1) done = true;
                }
                if (flushed && rc != Libav.ErrorAgain) done = true; // drained
            }
            // nothing at all after a seek: it landed past the last key frame (a video that truly ends there has frames before)
            overshot = seekTo is not null && counted == 0 && preRoll == 0;
            return overshot ? null : new Result(pixels, wanted, Math.Max(0, counted - skip), preRoll);
        }
        finally
        {
            if (scaler != IntPtr.Zero) av.FreeScaler(scaler);
            if (frame != IntPtr.Zero) av.FrameFree(&frame);
            if (packet != IntPtr.Zero) av.PacketFree(&packet);
            if (context != IntPtr.Zero) av.FreeContext(&context);
            if (format != IntPtr.Zero) av.CloseInput(&format);
        }
    }

    /// <summary>One frame scaled into <paramref name="into"/>; returns the scaler for the next frame.</summary>
    static IntPtr ScaleInto(Libav av, IntPtr scaler, IntPtr frame, Span<byte> into, int height, int width, string path)
    {
        int fw = *(int*)(frame + Libav.FrameWidth), fh = *(int*)(frame + Libav.FrameHeight), format = *(int*)(frame + Libav.FrameFormat);
        if (fw <= 0 || fh <= 0 || format < 0) throw new LibavLayoutException(path);
        scaler = av.GetCachedScaler(scaler, fw, fh, format, width, height, Libav.PixRgb24, Libav.SwsArea, IntPtr.Zero, IntPtr.Zero, IntPtr.Zero);
        if (scaler == IntPtr.Zero) throw new VideoReadException(path, $"libswscale cannot convert {fw}x{fh} pixel format {format} to {width}x{height} rgb24");
        UseFrameColours(av, scaler, frame);
        fixed (byte* dst = into)
        {
            byte** planes = stackalloc byte*[4] { dst, null, null, null };
            int* strides = stackalloc int[4] { width * 3, 0, 0, 0 };
            av.Scale(scaler, (byte**)(frame + Libav.FrameData), (int*)(frame + Libav.FrameLinesize), 0, fh, planes, strides);
        }
        return scaler;
    }

    /// <summary>
    /// The frame's YCbCr matrix and range, as ffmpeg 5.1's scale filter sets them (in_color_matrix=auto): the tagged
    /// matrix (BT.601 for untagged or unknown ones) and the tagged range, so BT.709 video gets BT.709 colours.
    /// </summary>
    static void UseFrameColours(Libav av, IntPtr scaler, IntPtr frame)
    {
        int space = *(int*)(frame + Libav.FrameColorSpace), range = *(int*)(frame + Libav.FrameColorRange);
        if (space < 1 || space > 10 || space == 8) space = 5; // AVCOL_SPC_BT470BG, as parse_yuv_type
        int* inverse, table;
        int srcFull, dstFull, brightness, contrast, saturation;
        if (av.GetColorspace(scaler, &inverse, &srcFull, &table, &dstFull, &brightness, &contrast, &saturation) < 0) return; // not a YCbCr source
        int* coefficients = av.Coefficients(space);
        if (range != 0) srcFull = range == 2 ? 1 : 0; // AVCOL_RANGE_JPEG: full range
        av.SetColorspace(scaler, coefficients, srcFull, coefficients, dstFull, brightness, contrast, saturation);
    }
}

/// <summary>The libraries' structs do not look as <see cref="Libav"/> expects: the caller uses the ffmpeg program instead.</summary>
internal sealed class LibavLayoutException(string path)
    : Exception($"{path}: FFmpeg's structs are not laid out as FFmpeg 5.1's; decoding with the ffmpeg program instead");

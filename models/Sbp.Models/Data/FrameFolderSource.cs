using System.Collections.Concurrent;
using StbImageSharp;

namespace Sbp.Models.Data;

/// <summary>
/// A video stored as a folder of JPEG/PNG frames (img_00001.jpg, ...; any names, ordinal sort order),
/// decoded with StbImageSharp. All frames must have the size of the first. The frame rate is not
/// stored in a folder: <see cref="FrameRate"/> (default 30) is reported for segment annotations in seconds.
/// </summary>
public sealed class FrameFolderSource(double frameRate = 30) : IFrameSource
{
    static readonly string[] Extensions = [".jpg", ".jpeg", ".png"];
    readonly ConcurrentDictionary<string, (string[] Files, VideoInfo Info)> _folders = new(StringComparer.Ordinal);

    public double FrameRate { get; } = frameRate;

    /// <summary>The frame files of a folder, in order.</summary>
    public static string[] FrameFiles(string folder)
    {
        if (!Directory.Exists(folder)) throw new VideoReadException(folder, "frame folder not found");
        var files = Directory.EnumerateFiles(folder)
            .Where(f => Extensions.Contains(Path.GetExtension(f).ToLowerInvariant()))
            .Order(StringComparer.Ordinal)
            .ToArray();
        if (files.Length == 0) throw new VideoReadException(folder, "frame folder holds no .jpg/.jpeg/.png files");
        return files;
    }

    public VideoInfo Probe(string path) => Folder(path).Info;

    (string[] Files, VideoInfo Info) Folder(string path) => _folders.GetOrAdd(path, p =>
    {
        var files = FrameFiles(p);
        var first = Decode(files[0]);
        return (files, new VideoInfo(files.Length, FrameRate, first.Height, first.Width));
    });

    public VideoClip Read(string path, IReadOnlyList<int> indices, int shortSide)
    {
        var (files, info) = Folder(path);
        var (oh, ow) = FrameSize.Scaled(info.Height, info.Width, shortSide);
        var clip = new VideoClip(indices.Count, oh, ow);
        ImageResult? previous = null;
        int previousIndex = -1;
        for (int i = 0; i < indices.Count; i++)
        {
            int t = indices[i];
            if ((uint)t >= (uint)files.Length) throw new VideoReadException(path, $"frame {t} requested, the folder has {files.Length}");
            var img = t == previousIndex && previous is not null ? previous : Decode(files[t]);
            if (img.Height != info.Height || img.Width != info.Width)
                throw new VideoReadException(files[t], $"frame is {img.Width}x{img.Height}, the folder's first frame is {info.Width}x{info.Height}");
            ImageResize.Resize(img.Data, img.Height, img.Width, clip.Frame(i), oh, ow);
            previous = img;
            previousIndex = t;
        }
        return clip;
    }

    static ImageResult Decode(string file)
    {
        try
        {
            return ImageResult.FromMemory(File.ReadAllBytes(file), ColorComponents.RedGreenBlue);
        }
        catch (Exception e) when (e is not OutOfMemoryException) // StbImageSharp throws plain Exception for bad data
        {
            throw new VideoReadException(file, $"cannot decode image ({e.Message})", e);
        }
    }
}

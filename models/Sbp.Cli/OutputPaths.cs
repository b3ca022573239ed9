namespace Sbp.Cli;

/// <summary>
/// Output folders and files checked before any work: a folder is created (with its parents) and
/// written to once; a file's folder is created and the file opened for writing. A problem is an
/// error that names the option, the path and what is wrong, so a run never trains for an hour and
/// then fails to save.
/// </summary>
public static class OutputPaths
{
    /// <summary>Creates <paramref name="path"/> as a folder and checks that files can be written into it; returns it.</summary>
    public static string Folder(string option, string path, string holds)
    {
        if (System.IO.File.Exists(path))
            throw new ArgumentException($"{option} {path} is a file; give a folder (it will hold {holds}).");
        try
        {
            Directory.CreateDirectory(path);
            var probe = Path.Combine(path, $".sbp-write-check-{Environment.ProcessId}");
            System.IO.File.WriteAllBytes(probe, []);
            System.IO.File.Delete(probe);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new ArgumentException($"{option} {path}: cannot write into this folder ({Reason(e)}); give a folder you can write to.");
        }
        return path;
    }

    /// <summary>Checks that <paramref name="path"/> can be written as a file (its folder is created); an existing file is kept as it is.</summary>
    public static string File(string option, string path)
    {
        if (Directory.Exists(path))
            throw new ArgumentException($"{option} {path} is a folder; give a file name.");
        bool existed = System.IO.File.Exists(path);
        try
        {
            var dir = Path.GetDirectoryName(Path.GetFullPath(path));
            if (dir is not null) Directory.CreateDirectory(dir);
            using (new FileStream(path, FileMode.OpenOrCreate, FileAccess.Write)) { }
            if (!existed) System.IO.File.Delete(path);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new ArgumentException($"{option} {path}: cannot write this file ({Reason(e)}); give a path you can write to.");
        }
        return path;
    }

    static string Reason(Exception e) => e switch
    {
        UnauthorizedAccessException => "permission denied",
        DirectoryNotFoundException => "a folder on the way is missing or is a file",
        _ => e.Message.TrimEnd('.'),
    };
}

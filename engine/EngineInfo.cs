using System.Reflection;

namespace Sbp;

public static class EngineInfo
{
    /// <summary>The version of the engine and its programs, set once in Directory.Build.props.</summary>
    public static string Version { get; } =
        typeof(EngineInfo).Assembly.GetCustomAttribute<AssemblyInformationalVersionAttribute>()?.InformationalVersion ?? "0.0.0";
}

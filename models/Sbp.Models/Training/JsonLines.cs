using System.Text.Json;
using System.Text.Json.Nodes;

namespace Sbp.Models.Training;

/// <summary>
/// Appends one JSON object per line (flushed each line, so a killed run keeps what it wrote). Records are
/// <see cref="JsonObject"/>s, written without reflection (the library stays trim and NativeAOT safe);
/// non-finite numbers are written as "NaN" and "Infinity" strings.
/// </summary>
public sealed class JsonLines(string path, bool append) : IDisposable
{
    readonly StreamWriter _writer = new(path, append) { AutoFlush = true };
    static readonly JsonSerializerOptions Options = new() { NumberHandling = System.Text.Json.Serialization.JsonNumberHandling.AllowNamedFloatingPointLiterals };

    public void Write(JsonObject record) => _writer.WriteLine(record.ToJsonString(Options));

    public void Dispose() => _writer.Dispose();
}

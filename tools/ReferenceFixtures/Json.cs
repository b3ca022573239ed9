using System.Text.Json.Nodes;

namespace Sbp.Tools.ReferenceFixtures;

/// <summary>Small helpers to build the config objects stored in the fixtures' metadata.</summary>
internal static class Json
{
    public static JsonArray Array(IEnumerable<int> values) => new([.. values.Select(v => (JsonNode?)JsonValue.Create(v))]);

    public static JsonArray Array(IEnumerable<long> values) => new([.. values.Select(v => (JsonNode?)JsonValue.Create(v))]);
}

using System.Text.Json;
using System.Text.Json.Nodes;
using Sbp.Models.Training;

namespace Sbp.Models.Tests.Training;

/// <summary>metrics.jsonl records: one object per line, appended, with non-finite numbers as named strings.</summary>
public class JsonLinesTests
{
    [Test]
    public void Records_are_one_object_per_line_and_append_after_reopening()
    {
        var path = Path.Combine(Path.GetTempPath(), $"jsonlines-{Guid.NewGuid():N}.jsonl");
        try
        {
            using (var lines = new JsonLines(path, append: false))
                lines.Write(new() { ["type"] = "step", ["step"] = 3L, ["loss"] = 0.25, ["lr"] = 1e-3f, ["map"] = (double?)null });
            using (var lines = new JsonLines(path, append: true))
                lines.Write(new() { ["type"] = "epoch", ["loss"] = double.NaN, ["top1"] = double.PositiveInfinity });
            var text = File.ReadAllLines(path);
            Assert.That(text, Has.Length.EqualTo(2));
            Assert.That(text[0], Is.EqualTo("{\"type\":\"step\",\"step\":3,\"loss\":0.25,\"lr\":0.001,\"map\":null}"));
            Assert.That(text[1], Is.EqualTo("{\"type\":\"epoch\",\"loss\":\"NaN\",\"top1\":\"Infinity\"}"));
            var second = JsonNode.Parse(text[1])!;
            Assert.That(second["loss"]!.GetValue<string>(), Is.EqualTo("NaN"));
        }
        finally
        {
            File.Delete(path);
        }
    }
}

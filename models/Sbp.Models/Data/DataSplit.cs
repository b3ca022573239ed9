namespace Sbp.Models.Data;

/// <summary>Which split of a seeded synthetic dataset; each split has its own random streams, so they never share samples.</summary>
public enum DataSplit
{
    Train,
    Validation,
}

/// <summary>Split names as used in file names and descriptions: "train", "val".</summary>
public static class DataSplitNames
{
    public static string Name(this DataSplit split) => split == DataSplit.Train ? "train" : "val";

    public static DataSplit Parse(string s) => s.ToLowerInvariant() switch
    {
        "train" => DataSplit.Train,
        "val" or "valid" or "validation" => DataSplit.Validation,
        _ => throw new ArgumentException($"unknown split '{s}': use train or val."),
    };
}

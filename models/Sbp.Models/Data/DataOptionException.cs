namespace Sbp.Models.Data;

/// <summary>The setting of a dataset an error is about, so that a program can name its own option for it.</summary>
public enum DataField { Count, Frames, Size, Classes, Noise, Speed, ObjectSize, Distractors, VideoFrames, ShortSide, Crop, Flip, Reverse, Normalize, Other }

/// <summary>A dataset setting out of range: <see cref="Field"/> says which one (the message says what the range is).</summary>
public sealed class DataOptionException(DataField field, string message) : ArgumentException(message)
{
    public DataField Field { get; } = field;
}

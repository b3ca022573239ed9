namespace Sbp.Models.Pretrained;

/// <summary>A PyTorch checkpoint that cannot be read safely or is not one: the message names the file, what was found and what to do.</summary>
public sealed class PthFormatException(string message) : Exception(message);

namespace Sbp.Models.Training;

/// <summary>A training run that cannot go on (a non-finite loss): the message says what to change.</summary>
public sealed class TrainingException(string message) : Exception(message);

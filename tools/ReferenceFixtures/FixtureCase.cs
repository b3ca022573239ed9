namespace Sbp.Tools.ReferenceFixtures;

/// <summary>One fixture file: a model at a configuration, the seed of its values, and the BatchNorm mode.</summary>
/// <param name="Name">File name without extension.</param>
/// <param name="Seed">torch.manual_seed before the values are drawn (parameters, then input, then targets).</param>
/// <param name="Model">The model and its configuration.</param>
/// <param name="BnTrain">BatchNorm in train mode (batch statistics); ignored for models without BatchNorm.</param>
internal sealed record FixtureCase(string Name, int Seed, IReferenceModel Model, bool BnTrain = false);

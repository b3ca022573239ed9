namespace Sbp.Models.Architectures;

/// <summary>
/// The fixed sinusoidal position table of "Attention Is All You Need", as VideoMAE's get_sinusoid_encoding_table
/// writes it: row p, channel j = sin (even j) or cos (odd j) of p / 10000^(2 floor(j/2) / D).
/// </summary>
public static class SinusoidalPositions
{
    /// <summary>The table [positions * dim], row-major.</summary>
    public static float[] Table(int positions, int dim)
    {
        var table = new float[positions * dim];
        for (int p = 0; p < positions; p++)
            for (int j = 0; j < dim; j++)
            {
                double angle = p / Math.Pow(10000, 2.0 * (j / 2) / dim);
                table[p * dim + j] = (float)(j % 2 == 0 ? Math.Sin(angle) : Math.Cos(angle));
            }
        return table;
    }
}

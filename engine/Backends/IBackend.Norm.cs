using Sbp.Tensors;

namespace Sbp.Backends;

// Normalization kernels: layer norm (one fused GPU kernel each way, as llm.c's layernorm_forward and
// layernorm_backward) and batch norm (what cuDNN's batch-norm training and inference calls do).
// Layer norm sees x as [rows, cols] (cols = the product of the normalized trailing dims); batch norm
// sees x as [N, C, S] (S = the product of the dims after the channel axis, 1 for [N, C]).
// Weight and bias are optional: null means scale 1 and shift 0.
public partial interface IBackend
{
    /// <summary>
    /// Per row r of x [rows, cols]: mean[r] = sum_j x[r,j] / cols, var = sum_j (x[r,j] - mean)^2 / cols
    /// (biased), rstd[r] = 1 / sqrt(var + eps), y[r,j] = (x[r,j] - mean[r]) rstd[r] w[j] + b[j].
    /// mean and rstd have rows elements; y, mean and rstd are overwritten. Under autocast x may be 16-bit (read as its
    /// exact widening), and y may be 16-bit (each value rounded where it is written, as a cast after the Float32 y).
    /// </summary>
    void LayerNormForward(Tensor x, Tensor? weight, Tensor? bias, float eps, Tensor y, Tensor mean, Tensor rstd);

    /// <summary>
    /// With xhat = (x - mean) rstd and dn = dy w per element of row r:
    /// dx[r,j] = rstd[r] (dn[r,j] - mean_j(dn[r,:]) - xhat[r,j] mean_j(dn[r,:] xhat[r,:])),
    /// dweight[j] = sum_r dy[r,j] xhat[r,j], dbias[j] = sum_r dy[r,j]. Each output may be null (not
    /// needed); those given are overwritten (the sums over rows are complete, not added to; zero when
    /// there are no rows). x may be 16-bit, as in the forward.
    /// </summary>
    void LayerNormBackward(Tensor dy, Tensor x, Tensor? weight, Tensor mean, Tensor rstd, Tensor? dx, Tensor? dweight, Tensor? dbias);

    /// <summary>
    /// Training batch norm over x [N, C, S]: per channel c over its M = N S values, mean and the
    /// biased variance var; saveMean[c] = mean, saveInvStd[c] = 1 / sqrt(var + eps),
    /// y = (x - mean) invstd w[c] + b[c]. When the running statistics are given they are updated in
    /// place: running = (1 - momentum) running + momentum stat, with the unbiased variance
    /// var M / (M - 1) for runningVar (PyTorch's semantics; the caller ensures M &gt; 1).
    /// </summary>
    void BatchNormTrainForward(Tensor x, Tensor? weight, Tensor? bias, Tensor? runningMean, Tensor? runningVar,
        float momentum, float eps, Tensor y, Tensor saveMean, Tensor saveInvStd);

    /// <summary>
    /// Backward of <see cref="BatchNormTrainForward"/> through the batch statistics: with
    /// xhat = (x - saveMean) saveInvStd and per-channel sums sdy = sum dy, sdx = sum dy xhat over M values,
    /// dx = w invstd (dy - sdy / M - xhat sdx / M), dweight = sdx, dbias = sdy. Each output may be null;
    /// those given are overwritten. <paramref name="eps"/> is the forward pass's (cuDNN requires the same
    /// epsilon in forward and backward; the CPU uses the saved inverse deviation alone).
    /// </summary>
    void BatchNormBackward(Tensor dy, Tensor x, Tensor? weight, Tensor saveMean, Tensor saveInvStd,
        Tensor? dx, Tensor? dweight, Tensor? dbias, float eps);

    /// <summary>
    /// Batch norm with fixed statistics (evaluation, or frozen statistics): y = (x - mean[c]) invStd[c] w[c] + b[c]
    /// over x [N, C, S]; y is overwritten.
    /// </summary>
    void BatchNormInferenceForward(Tensor x, Tensor? weight, Tensor? bias, Tensor mean, Tensor invStd, Tensor y);

    /// <summary>
    /// Backward of <see cref="BatchNormInferenceForward"/> (statistics are constants):
    /// dx = dy w[c] invStd[c], dweight[c] = sum dy (x - mean[c]) invStd[c], dbias[c] = sum dy over
    /// dy [N, C, S]. x is read only for dweight (it may be null when dweight is). Each output may be
    /// null; those given are overwritten.
    /// </summary>
    void BatchNormInferenceBackward(Tensor dy, Tensor? x, Tensor? weight, Tensor mean, Tensor invStd,
        Tensor? dx, Tensor? dweight, Tensor? dbias);
}

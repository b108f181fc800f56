//! CONCATENATION along channels. Inputs and output share quantization (TFLM requires
//! it for int8), so the kernel only interleaves bytes: for every pixel, the channels
//! of input 0, then input 1, and so on. Layout `[H, W, C_k]` → `[H, W, Σ C_k]`.

/// Copies `input` (with `channels` channels) into `output` (with `output_channels`
/// channels) at channel offset `channel_offset`, for `pixels` pixels.
pub fn concat_channels_s8(
    input: &[i8],
    channels: usize,
    output: &mut [i8],
    output_channels: usize,
    channel_offset: usize,
    pixels: usize,
) {
    for p in 0..pixels {
        let src = input.get(p * channels..(p + 1) * channels);
        let start = p * output_channels + channel_offset;
        let dst = output.get_mut(start..start + channels);
        if let (Some(src), Some(dst)) = (src, dst) {
            dst.copy_from_slice(src);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interleaves_channels() {
        let a: [i8; 4] = [1, 2, 3, 4]; // 2 pixels × 2 channels
        let b: [i8; 2] = [9, 8]; // 2 pixels × 1 channel
        let mut out = [0_i8; 6];
        concat_channels_s8(&a, 2, &mut out, 3, 0, 2);
        concat_channels_s8(&b, 1, &mut out, 3, 2, 2);
        assert_eq!(out, [1, 2, 9, 3, 4, 8]);
    }
}

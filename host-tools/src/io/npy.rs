//! int8 `.npy` arrays (NumPy's format) through the `npyz` crate.

use anyhow::{bail, Context, Result};
use std::path::Path;

/// An int8 array: shape and row-major data.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ArrayI8 {
    /// Dimensions.
    pub shape: Vec<usize>,
    /// Values, row-major.
    pub data: Vec<i8>,
}

/// Reads an int8 `.npy` file.
pub fn read_i8(path: &Path) -> Result<ArrayI8> {
    let bytes = crate::io::fs::read(path)?;
    let file = npyz::NpyFile::new(&bytes[..]).with_context(|| format!("{}: not a valid .npy file", path.display()))?;
    let dtype = file.dtype();
    let is_i8 = matches!(&dtype, npyz::DType::Plain(t) if t.type_char() == npyz::TypeChar::Int && t.size_field() == 1);
    if !is_i8 {
        bail!(
            "{}: holds {}, expected an int8 array (quantize the inputs with the model's input scale and zero point)",
            path.display(),
            dtype.descr()
        );
    }
    if file.order() != npyz::Order::C {
        bail!("{}: Fortran-ordered arrays are not supported", path.display());
    }
    let shape: Vec<usize> = file.shape().iter().map(|&d| d as usize).collect();
    let data: Vec<i8> = file.into_vec().with_context(|| format!("{}: truncated or corrupt data", path.display()))?;
    if data.len() != shape.iter().product::<usize>() {
        bail!("{}: holds {} values for shape {shape:?}", path.display(), data.len());
    }
    Ok(ArrayI8 { shape, data })
}

/// Encodes an int8 array as `.npy` bytes.
pub fn encode_i8(array: &ArrayI8) -> Result<Vec<u8>> {
    let mut out = Vec::new();
    let shape: Vec<u64> = array.shape.iter().map(|&d| d as u64).collect();
    use npyz::WriterBuilder;
    let mut writer = npyz::WriteOptions::<i8>::new().default_dtype().shape(&shape).writer(&mut out).begin_nd()?;
    writer.extend(array.data.iter().copied())?;
    writer.finish()?;
    Ok(out)
}

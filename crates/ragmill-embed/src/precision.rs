//! Numeric precision of the local encoder.

use std::fmt;
use std::str::FromStr;

/// How the local encoder computes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Precision {
    /// 32-bit floats throughout: reproduces the reference model (cosine ≥ 0.999).
    #[default]
    Fp32,
    /// The dense layers in 8-bit integers (weights per output channel, activations per
    /// token), attention and normalisation in FP32: about twice as fast, cosine ≈ 0.99 to FP32.
    Int8,
}

impl Precision {
    /// `fp32` or `int8`.
    pub fn as_str(self) -> &'static str {
        match self {
            Precision::Fp32 => "fp32",
            Precision::Int8 => "int8",
        }
    }
}

impl fmt::Display for Precision {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Precision {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "fp32" | "f32" => Ok(Precision::Fp32),
            "int8" | "i8" => Ok(Precision::Int8),
            other => Err(format!("unknown precision {other:?} (expected fp32 or int8)")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_prints() {
        assert_eq!("INT8".parse::<Precision>(), Ok(Precision::Int8));
        assert_eq!(Precision::Fp32.to_string().parse::<Precision>(), Ok(Precision::Fp32));
        let err = "fp16".parse::<Precision>().expect_err("not a precision");
        assert!(err.contains("fp32 or int8"), "{err}");
    }
}

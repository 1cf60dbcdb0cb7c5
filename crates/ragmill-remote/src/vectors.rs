//! Checking a server's vectors and bringing them to unit length.
//!
//! The `Embedder` trait promises one unit vector per input, all of one dimension. Ollama and
//! OpenAI-compatible servers do not always normalise (it depends on the model and server), and a
//! misconfigured or broken one can answer too few vectors, vectors of another model's dimension,
//! or garbage; all of that is caught here, before anything reaches the caller.

use crate::error::RemoteError;

/// Checks `vectors` (the answer of `url` to `want` inputs): exactly `want` vectors, all of
/// dimension `want_dim` (or, when `None`, all of the first one's), non-empty, finite, not all
/// zero. Then L2-normalises each in place.
pub(crate) fn finish(
    url: &str,
    mut vectors: Vec<Vec<f32>>,
    want: usize,
    want_dim: Option<usize>,
) -> Result<Vec<Vec<f32>>, RemoteError> {
    let first_dim = vectors.first().map_or(0, Vec::len);
    let dim = want_dim.unwrap_or(first_dim);
    let shape = |got: usize, got_dim: usize| RemoteError::Shape {
        url: url.to_owned(),
        got,
        dim: got_dim,
        want,
        want_dim: dim,
    };
    if vectors.len() != want {
        return Err(shape(vectors.len(), first_dim));
    }
    if let Some(odd) = vectors.iter().find(|v| v.len() != dim) {
        return Err(shape(want, odd.len()));
    }
    if want > 0 && dim == 0 {
        return Err(invalid(url, "empty vectors".into()));
    }
    for (i, v) in vectors.iter_mut().enumerate() {
        if v.iter().any(|x| !x.is_finite()) {
            return Err(invalid(url, format!("vector {i} has a non-finite value")));
        }
        // In f64: squares of large f32 values would overflow f32.
        let norm = v.iter().map(|&x| f64::from(x) * f64::from(x)).sum::<f64>().sqrt();
        if norm == 0.0 {
            return Err(invalid(url, format!("vector {i} is all zeros")));
        }
        for x in v.iter_mut() {
            *x = (f64::from(*x) / norm) as f32;
        }
    }
    Ok(vectors)
}

fn invalid(url: &str, message: String) -> RemoteError {
    RemoteError::InvalidResponse { url: url.to_owned(), message }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn norm(v: &[f32]) -> f32 {
        v.iter().map(|x| x * x).sum::<f32>().sqrt()
    }

    #[test]
    fn normalises_and_checks_shape() {
        let out = finish("u", vec![vec![3.0, 4.0], vec![1e30, 0.0]], 2, Some(2)).expect("valid");
        assert_eq!(out[0], vec![0.6, 0.8]);
        assert!((norm(&out[1]) - 1.0).abs() < 1e-6);

        let e = finish("u", vec![vec![1.0, 0.0]], 2, Some(2)).expect_err("too few");
        assert!(matches!(e, RemoteError::Shape { got: 1, want: 2, .. }));
        let e = finish("u", vec![vec![1.0; 3], vec![1.0; 3]], 2, Some(2)).expect_err("dim");
        assert!(e.is_wrong_dimension(), "{e}");
        let e = finish("u", vec![vec![1.0; 3], vec![1.0; 4]], 2, None).expect_err("mixed");
        assert!(matches!(e, RemoteError::Shape { dim: 4, want_dim: 3, .. }), "{e}");
    }

    #[test]
    fn rejects_garbage() {
        let e = finish("u", vec![vec![f32::INFINITY, 0.0]], 1, None).expect_err("inf");
        assert!(e.to_string().contains("non-finite"), "{e}");
        let e = finish("u", vec![vec![0.0, 0.0]], 1, None).expect_err("zero");
        assert!(e.to_string().contains("all zeros"), "{e}");
        let e = finish("u", vec![vec![]], 1, None).expect_err("empty");
        assert!(e.to_string().contains("empty"), "{e}");
        assert!(finish("u", vec![], 0, Some(8)).expect("nothing asked").is_empty());
    }
}

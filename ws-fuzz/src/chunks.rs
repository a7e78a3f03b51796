//! Cutting an input into the pieces a transport might deliver.
//!
//! The chunking is itself part of the input, so the fuzzer explores where reads end: a spec
//! byte gives the number of length bytes that follow (low three bits), and those lengths are
//! used in turn, cyclically, to cut the rest. A length of 0 is an empty read.

/// Splits `data` into a chunk spec and the body, and returns the body's pieces.
pub fn split(data: &[u8]) -> Vec<&[u8]> {
    let Some((&spec, rest)) = data.split_first() else {
        return vec![];
    };
    let n = (spec & 7) as usize;
    let (lens, body) = rest.split_at(n.min(rest.len()));
    cut(body, lens)
}

/// Cuts `body` with the piece lengths `lens`, used cyclically; the last piece takes what is
/// left. All-zero or no lengths give the body whole.
pub fn cut<'a>(body: &'a [u8], lens: &[u8]) -> Vec<&'a [u8]> {
    if lens.iter().all(|&l| l == 0) {
        return vec![body];
    }
    let mut pieces = Vec::new();
    let mut rest = body;
    for &len in lens.iter().cycle() {
        if rest.is_empty() {
            break;
        }
        let (piece, tail) = rest.split_at((len as usize).min(rest.len()));
        pieces.push(piece);
        rest = tail;
    }
    pieces
}

/// The encoding [`split`] reads: a spec for `lens` followed by the body.
pub fn encode(lens: &[u8], body: &[u8]) -> Vec<u8> {
    assert!(lens.len() < 8);
    let mut out = vec![lens.len() as u8];
    out.extend_from_slice(lens);
    out.extend_from_slice(body);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pieces_concatenate_to_the_body() {
        let body: Vec<u8> = (0..100).collect();
        for lens in [&[][..], &[0], &[1], &[3, 0, 7], &[255]] {
            let input = encode(lens, &body);
            assert_eq!(split(&input).concat(), body, "{lens:?}");
        }
        assert_eq!(split(&encode(&[1, 2], b"abcd")), [&b"a"[..], b"bc", b"d"]);
    }
}

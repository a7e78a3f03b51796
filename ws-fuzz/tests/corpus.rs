//! Replays the committed corpus through every target on stable, and checks that the committed
//! seeds are the ones `src/seeds.rs` generates.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

fn corpus_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("corpus")
}

/// Every committed corpus file: (target, file name) to content.
fn committed() -> BTreeMap<(String, String), Vec<u8>> {
    let mut files = BTreeMap::new();
    for entry in std::fs::read_dir(corpus_dir()).expect("corpus/ exists") {
        let dir = entry.unwrap().path();
        let target = dir.file_name().unwrap().to_string_lossy().into_owned();
        for file in std::fs::read_dir(&dir).unwrap() {
            let path = file.unwrap().path();
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            files.insert((target.clone(), name), std::fs::read(&path).unwrap());
        }
    }
    files
}

#[test]
fn every_corpus_file_passes_every_target() {
    let files = committed();
    assert!(files.len() > 50, "only {} corpus files", files.len());
    // Every failure is named, not only the first (each one's panic message is printed above).
    let mut failures = Vec::new();
    for ((dir, name), bytes) in &files {
        for (target, run) in ws_fuzz::TARGETS {
            if std::panic::catch_unwind(|| run(bytes)).is_err() {
                failures.push(format!("{target} failed on corpus/{dir}/{name}"));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn committed_seeds_match_the_generator() {
    let files = committed();
    let seeds = ws_fuzz::seeds::all();
    for seed in &seeds {
        let key = (seed.target.to_string(), seed.name.clone());
        assert_eq!(
            files.get(&key),
            Some(&seed.bytes),
            "corpus/{}/{} is stale: run `cargo run -p ws-fuzz --example gen_corpus`",
            seed.target,
            seed.name
        );
    }
    assert_eq!(
        files.len(),
        seeds.len(),
        "corpus/ holds files the generator does not make"
    );
}

#[test]
fn every_target_has_a_corpus_directory() {
    for (target, _) in ws_fuzz::TARGETS {
        assert!(corpus_dir().join(target).is_dir(), "corpus/{target}");
    }
}

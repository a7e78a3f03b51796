//! Writes the seed corpus to `corpus/<target>/`, replacing what is there.
//!
//!     cargo run -p ws-fuzz --example gen_corpus

use std::path::Path;

fn main() -> std::io::Result<()> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("corpus");
    for (target, _) in ws_fuzz::TARGETS {
        let dir = root.join(target);
        if dir.exists() {
            std::fs::remove_dir_all(&dir)?;
        }
        std::fs::create_dir_all(&dir)?;
    }
    let seeds = ws_fuzz::seeds::all();
    for seed in &seeds {
        std::fs::write(root.join(seed.target).join(&seed.name), &seed.bytes)?;
    }
    println!("wrote {} seeds to {}", seeds.len(), root.display());
    Ok(())
}

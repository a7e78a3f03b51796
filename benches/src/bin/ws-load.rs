//! The load generator; see `benches::load`.

fn main() -> std::process::ExitCode {
    benches::load::main()
}

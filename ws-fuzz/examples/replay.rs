//! Runs one target on files (a crash artifact, a corpus entry) on stable, with a readable
//! panic message; for `connection` and `server`, prints the decoded operations first.
//!
//!     cargo run -p ws-fuzz --example replay -- connection ws-fuzz/artifacts/connection/crash-*

fn main() {
    let mut args = std::env::args().skip(1);
    let name = args.next().expect("usage: replay TARGET FILE...");
    let target = ws_fuzz::target(&name).unwrap_or_else(|| panic!("no target {name}"));
    for path in args {
        let data = std::fs::read(&path).unwrap();
        println!("{path}: {} bytes", data.len());
        if name == "connection" {
            println!("{:#?}", ws_fuzz::connection::Input::decode(&data));
        }
        if name == "server" {
            println!("{:#?}", ws_fuzz::server::Input::decode(&data));
        }
        target(&data);
        println!("ok");
    }
}

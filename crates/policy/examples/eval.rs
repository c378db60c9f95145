//! `cargo run -p rampart-policy --example eval < case.json` — the `rampart policy eval` format without the CLI.

use std::io::Read;

fn main() {
    let mut input = String::new();
    if let Err(e) = std::io::stdin().read_to_string(&mut input) {
        eprintln!("cannot read standard input: {e}");
        std::process::exit(2);
    }
    match rampart_policy::harness::eval_json(&input) {
        Ok(out) => println!("{out}"),
        Err(e) => {
            eprintln!("{e}");
            std::process::exit(2);
        }
    }
}

//! Re-embeds the SQL migrations when they change (`embed_migrations!` alone does not tell cargo).

#![allow(clippy::print_stdout)] // build scripts talk to cargo on stdout

fn main() {
    for tree in ["common", "kg", "us"] {
        for backend in ["postgres", "sqlite"] {
            println!("cargo:rerun-if-changed=../../migrations-{tree}/{backend}");
        }
    }
}

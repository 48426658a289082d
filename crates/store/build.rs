//! Re-embeds the SQL migrations when they change (`embed_migrations!` alone does not tell cargo).

#![allow(clippy::print_stdout)] // build scripts talk to cargo on stdout

fn main() {
    for dir in [
        "../../migrations-kg/postgres",
        "../../migrations-kg/sqlite",
        "../../migrations-us/postgres",
        "../../migrations-us/sqlite",
    ] {
        println!("cargo:rerun-if-changed={dir}");
    }
}

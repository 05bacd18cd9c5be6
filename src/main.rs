//! The `patrol` binary: all behaviour lives in the library; this only passes on the exit code.

fn main() {
    std::process::exit(patrol::app::main());
}

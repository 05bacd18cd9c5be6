//! The `patrol` binary: all behaviour lives in the library; this only passes on the exit code.

fn main() {
    restore_sigpipe();
    // reqwest is built without a default TLS provider, and building any client (collectors,
    // Telegram) panics until one is installed.
    let _ = rustls::crypto::ring::default_provider().install_default();
    std::process::exit(patrol::app::main());
}

/// Rust ignores SIGPIPE, so `patrol history … | head` would panic on the closed pipe; a command
/// line tool should end quietly instead, as `cat` does.
#[allow(unsafe_code)]
fn restore_sigpipe() {
    // SAFETY: setting a signal's disposition to its default before any thread is started.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
}

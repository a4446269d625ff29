//! Links the `mtr` executable without position independence on x86-64
//! Linux (as Go does by default). A no-op run is a few milliseconds, and
//! relocating a PIE binary of this size at every start (20,000 relative
//! relocations, each touching a copy-on-write page) was a quarter of it.
//! Libraries, stack and heap keep their randomised addresses. (Where
//! scripts/rustc-static links mtr statically, it is non-PIE already; this
//! covers a dynamic build.)

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    if std::env::var("TARGET").as_deref() == Ok("x86_64-unknown-linux-gnu") {
        println!("cargo:rustc-link-arg-bins=-no-pie");
    }
}

//! The `mtr` executable is linked statically wherever scripts/rustc-static
//! can do it (x86-64 Linux with glibc's static archives): it starts in half
//! the time (bench/notes.md, item 46). A build that lost the wrapper would
//! pass every other test, only slower; this one says so.

use std::path::Path;
use std::process::Command;

/// ELF program header types.
const PT_DYNAMIC: u32 = 2;
const PT_INTERP: u32 = 3;

/// Whether the C toolchain finds the static archive `name`, as the
/// wrapper asks it.
fn static_archive(name: &str) -> bool {
    Command::new("cc")
        .arg(format!("-print-file-name={name}"))
        .output()
        .is_ok_and(|o| Path::new(String::from_utf8_lossy(&o.stdout).trim()).is_file())
}

/// The types of the program headers of the 64-bit little-endian ELF file
/// `elf`.
fn program_headers(elf: &[u8]) -> Vec<u32> {
    assert_eq!(&elf[..6], b"\x7fELF\x02\x01", "a 64-bit little-endian ELF file");
    let at = |offset: usize, len: usize| {
        let mut bytes = [0u8; 8];
        bytes[..len].copy_from_slice(&elf[offset..offset + len]);
        u64::from_le_bytes(bytes) as usize
    };
    let (offset, size, count) = (at(0x20, 8), at(0x36, 2), at(0x38, 2));
    (0..count).map(|i| at(offset + i * size, 4) as u32).collect()
}

#[test]
fn mtr_is_linked_statically_where_it_can_be() {
    if !cfg!(all(target_arch = "x86_64", target_os = "linux", target_env = "gnu")) {
        return;
    }
    if !(static_archive("libc.a") && static_archive("libgcc_eh.a")) {
        eprintln!("SKIPPED: glibc's static archives are missing, so mtr is linked dynamically");
        return;
    }
    let elf = std::fs::read(env!("CARGO_BIN_EXE_mtr")).unwrap();
    let headers = program_headers(&elf);
    assert!(
        !headers.contains(&PT_INTERP) && !headers.contains(&PT_DYNAMIC),
        "mtr has a dynamic loader or a dynamic section (program headers {headers:?}): \
         is scripts/rustc-static still the rustc wrapper in .cargo/config.toml?"
    );
}

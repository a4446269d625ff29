fn main() -> std::process::ExitCode {
    let code = mtr::app::main();
    std::process::ExitCode::from(u8::try_from(code).unwrap_or(1))
}

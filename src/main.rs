fn main() {
    // clutch's keeper (see clutch::runtime::keeper) is this same binary, started by clutch.
    let args: Vec<std::ffi::OsString> = std::env::args_os().collect();
    if args.get(1).is_some_and(|a| a == clutch::runtime::keeper::ENTRY) {
        std::process::exit(clutch::runtime::keeper::main(&args[2..]));
    }
    std::process::exit(clutch::cli::main());
}

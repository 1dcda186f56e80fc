fn main() {
    std::process::exit(clutch::cli::main());
}

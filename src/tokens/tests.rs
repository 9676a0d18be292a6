use super::*;

fn load(name: EncodingName) -> Encoding {
    let path = format!(
        "{}/python/fast_litellm/_vocab/{}.tiktoken",
        env!("CARGO_MANIFEST_DIR"),
        name.as_str()
    );
    let data = std::fs::read(&path).expect("vocabulary file");
    Encoding::from_tiktoken(name, &data).expect("valid vocabulary")
}

#[test]
fn smoke() {
    for name in EncodingName::ALL {
        let enc = load(name);
        assert_eq!(enc.count(""), 0);
        println!("{name}: {:?}", enc.encode("hello world, it's 2024!"));
    }
}

use super::key::{digest, Writer};
use super::*;

fn cache(max: u64, bytes: Option<u64>) -> Cache<u32> {
    Cache::new(max, bytes).unwrap()
}

#[test]
fn least_recently_used_goes_first() {
    let c = cache(2, None);
    c.set("a", 1, 0, NEVER);
    c.set("b", 2, 0, NEVER);
    assert_eq!(c.get("a", || 0, |v| *v).0, Some(1)); // a is now the most recent
    let (stored, removed) = c.set("c", 3, 0, NEVER);
    assert!(stored);
    assert_eq!(removed, vec![2]);
    assert_eq!(c.keys_lru_first(), vec!["a", "c"]);
    assert_eq!(c.get("b", || 0, |v| *v).0, None);
    let s = c.stats();
    assert_eq!((s.hits, s.misses, s.evictions, s.entries), (1, 1, 1, 2));
}

#[test]
fn entries_expire_on_the_given_clock() {
    let c = cache(10, None);
    c.set("a", 1, 0, 100);
    assert_eq!(c.get("a", || 99, |v| *v).0, Some(1));
    let (found, removed) = c.get("a", || 100, |v| *v);
    assert_eq!((found, removed), (None, vec![1]));
    assert_eq!(c.stats().expirations, 1);
    c.set("b", 2, 0, 50);
    c.set("c", 3, 0, NEVER);
    assert_eq!(c.cleanup(60), vec![2]);
    assert_eq!(c.len(), 1);
}

#[test]
fn a_byte_limit_evicts_and_refuses_what_cannot_fit() {
    let c = cache(100, Some(10));
    c.set("a", 1, 4, NEVER);
    c.set("b", 2, 4, NEVER);
    let (_, removed) = c.set("c", 3, 4, NEVER);
    assert_eq!(removed, vec![1]);
    assert_eq!(c.stats().bytes, 8);
    let (stored, removed) = c.set("b", 9, 11, NEVER);
    assert!(!stored);
    assert_eq!(removed, vec![2, 9]);
    assert_eq!(c.keys_lru_first(), vec!["c"]);
    assert!(Cache::<u32>::new(0, None).is_err());
    assert!(Cache::<u32>::new(1, Some(0)).is_err());
}

#[test]
fn canonical_form_of_numbers_and_maps() {
    let write = |f: &dyn Fn(&mut Writer)| {
        let mut w = Writer::default();
        f(&mut w);
        w.bytes
    };
    assert_eq!(write(&|w| w.float(1.0)), write(&|w| w.int(1)));
    assert_eq!(write(&|w| w.float(-0.0)), write(&|w| w.int(0)));
    assert_eq!(
        write(&|w| w.float(f64::NAN)),
        write(&|w| w.float(-f64::NAN))
    );
    assert_ne!(write(&|w| w.float(0.5)), write(&|w| w.int(0)));
    let pair = |k: &str, v: i64| {
        let (mut kw, mut vw) = (Writer::default(), Writer::default());
        kw.str(k.as_bytes());
        vw.int(v);
        (kw.bytes, vw.bytes)
    };
    let a = write(&|w| w.map(vec![pair("x", 1), pair("y", 2)]));
    let b = write(&|w| w.map(vec![pair("y", 2), pair("x", 1)]));
    assert_eq!(a, b);
    assert_eq!(digest(&a).len(), 64);
    assert_ne!(
        digest(&a),
        digest(&write(&|w| w.map(vec![pair("x", 2), pair("y", 1)])))
    );
}

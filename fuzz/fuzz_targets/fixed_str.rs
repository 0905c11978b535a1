//! `FixedStr<N>` read from arbitrary bytes (as a peer may have left them):
//! no accessor or formatter panics; a string it accepts is at most `N` bytes
//! and matches `len()`. Also `set_truncating` on arbitrary text.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mapshare::bytemuck;
use mapshare::FixedStr;

fn check<const N: usize>(data: &[u8]) {
    let need = 4 + N;
    if data.len() >= need {
        let s: FixedStr<N> = bytemuck::pod_read_unaligned(&data[..need]);
        let len = s.len();
        assert!(len <= N);
        assert_eq!(s.as_bytes().len(), len);
        assert_eq!(s.is_empty(), len == 0);
        let shown = format!("{s}");
        let _ = format!("{s:?}");
        match s.as_str() {
            Ok(t) => {
                assert!(t.len() <= N);
                assert_eq!(t.len(), len);
                assert_eq!(t.as_bytes(), s.as_bytes());
                assert_eq!(shown, t);
                assert_eq!(FixedStr::<N>::new(t).expect("fits").as_str(), Ok(t));
            }
            Err(e) => {
                let _ = e.to_string();
            }
        }
    }
    // Text of any length, cut to fit on a char boundary.
    let text = String::from_utf8_lossy(data);
    let mut s = FixedStr::<N>::empty();
    let t = s.set_truncating(&text);
    assert_eq!(t.kept + t.dropped, text.len());
    assert!(t.kept <= N);
    assert_eq!(s.as_str(), Ok(&text[..t.kept]));
    assert_eq!(FixedStr::<N>::new(&text).is_ok(), text.len() <= N);
}

fuzz_target!(|data: &[u8]| {
    check::<0>(data);
    check::<1>(data);
    check::<3>(data);
    check::<4>(data);
    check::<16>(data);
    check::<60>(data);
    check::<64>(data);
    check::<104>(data);
    check::<255>(data);
});

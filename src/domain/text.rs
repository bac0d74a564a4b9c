//! Names and tags as plain text: HTML markup removed, its text kept, as the
//! platform does (`<a href="#" onclick="...">churros-xss</a>` is stored and
//! answered as `churros-xss`).
//!
//! The HTML is parsed by `ammonia` (html5ever, the HTML5 parsing algorithm)
//! with no tag allowed: tags, attributes and comments go, text stays, and
//! `script`/`style` lose their content too. Its output is HTML, so the four
//! escapes its serializer writes in text are undone to give the text back.
//! That text may itself read as markup (`&lt;b&gt;` is the text `<b>`), so
//! the step is repeated until nothing changes: what is stored is its own
//! plain text. Text that has not reached that point after
//! [`MAX_PASSES`] passes (markup escaped that many times over: no name
//! does that by accident) is refused, never stored as the last pass left it,
//! which could still read as markup.

use std::sync::LazyLock;

static NO_TAGS: LazyLock<ammonia::Builder<'static>> = LazyLock::new(ammonia::Builder::empty);

pub const MAX_PASSES: usize = 16;

/// Text that is still markup after [`MAX_PASSES`] passes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TooDeep;

impl std::fmt::Display for TooDeep {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "holds HTML escaped too many times over to be read as plain text; give it as plain text")
    }
}

/// The text of `input` with every piece of HTML markup removed: its own
/// plain text (a fixed point of the step), or [`TooDeep`].
pub fn plain_text(input: &str) -> Result<String, TooDeep> {
    // Text without these characters is not markup and has no escapes.
    if !input.contains(['<', '&']) {
        return Ok(input.to_owned());
    }
    let mut text = input.to_owned();
    for _ in 0..MAX_PASSES {
        let next = unescape(&NO_TAGS.clean(&text).to_string());
        if next == text {
            return Ok(text);
        }
        text = next;
    }
    Err(TooDeep)
}

/// The inverse of what html5ever's serializer does to a text node (`&`,
/// U+00A0, `<`, `>`); `&amp;` last, so `&amp;lt;` is `&lt;`.
fn unescape(html: &str) -> String {
    html.replace("&lt;", "<").replace("&gt;", ">").replace("&nbsp;", "\u{a0}").replace("&amp;", "&")
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn markup_goes_and_its_text_stays() {
        for (given, text) in [
            (r##"<a href="#" onclick="alert(1)">churros-xss</a>"##, "churros-xss"),
            ("Support <b>desk</b>", "Support desk"),
            ("<script>alert(1)</script>Ops", "Ops"),
            ("<style>p{}</style><p>Ops</p>", "Ops"),
            ("a<!-- note -->b", "ab"),
            ("<img src=x onerror=alert(1)>", ""),
            ("&lt;script&gt;alert(1)&lt;/script&gt;x", "x"),
            ("&amp;lt;b&amp;gt;bold", "bold"),
            ("R&D <i>team</i>", "R&D team"),
            ("Tom & Jerry", "Tom & Jerry"),
            ("1 < 2", "1 < 2"),
            ("a &amp; b", "a & b"),
            ("plain", "plain"),
        ] {
            assert_eq!(plain_text(given).unwrap(), text, "{given}");
        }
    }

    /// `<img src=x onerror=alert(1)>` escaped `depth` times over.
    fn escaped(depth: usize) -> String {
        let mut s = "<img src=x onerror=alert(1)>".to_owned();
        for _ in 0..depth {
            s = s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;");
        }
        s
    }

    #[test]
    fn markup_escaped_at_any_depth_never_comes_back() {
        for depth in 0..40 {
            match plain_text(&escaped(depth)) {
                Ok(text) => {
                    assert_eq!(text, "", "depth {depth}");
                    assert!(depth < MAX_PASSES, "depth {depth} reached a fixed point");
                }
                Err(TooDeep) => assert!(depth >= MAX_PASSES - 1, "depth {depth} refused"),
            }
        }
        assert!(plain_text(&escaped(16)).is_err(), "the issue's case: 16 times over");
    }

    proptest! {
        #[test]
        fn text_without_markup_is_kept_byte_for_byte(s in "[^<&]{0,80}") {
            prop_assert_eq!(plain_text(&s), Ok(s));
        }

        /// Whatever is given, what is kept is its own plain text (an HTML
        /// parser reads it as text only) and holds nothing that opens a tag
        /// or a comment.
        #[test]
        fn the_result_is_a_fixed_point_without_tags(s in "([a-z <>/&;\"=!-]|<b>|</b>|&lt;|&amp;|<script>){0,30}") {
            let Ok(text) = plain_text(&s) else { return Ok(()) };
            prop_assert_eq!(plain_text(&text), Ok(text.clone()));
            let bytes = text.as_bytes();
            for (i, b) in bytes.iter().enumerate() {
                if *b == b'<' {
                    let next = |k: usize| bytes.get(i + k).copied().unwrap_or(b' ');
                    let opens = next(1).is_ascii_alphabetic() || matches!(next(1), b'!' | b'?')
                        || (next(1) == b'/' && next(2).is_ascii_alphabetic());
                    prop_assert!(!opens, "{text:?}");
                }
            }
        }
    }
}

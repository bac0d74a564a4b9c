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
//! plain text. Each pass that changes anything makes the text shorter, so
//! this ends; the bound is a guard.

use std::sync::LazyLock;

static NO_TAGS: LazyLock<ammonia::Builder<'static>> = LazyLock::new(ammonia::Builder::empty);

const MAX_PASSES: usize = 16;

/// The text of `input` with every piece of HTML markup removed.
pub fn plain_text(input: &str) -> String {
    // Text without these characters is not markup and has no escapes.
    if !input.contains(['<', '&']) {
        return input.to_owned();
    }
    let mut text = input.to_owned();
    for _ in 0..MAX_PASSES {
        let next = unescape(&NO_TAGS.clean(&text).to_string());
        if next == text {
            break;
        }
        text = next;
    }
    text
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
            assert_eq!(plain_text(given), text, "{given}");
        }
    }

    proptest! {
        #[test]
        fn text_without_markup_is_kept_byte_for_byte(s in "[^<&]{0,80}") {
            prop_assert_eq!(plain_text(&s), s);
        }

        /// Whatever is given, what is kept is its own plain text (an HTML
        /// parser reads it as text only) and holds nothing that opens a tag
        /// or a comment.
        #[test]
        fn the_result_is_a_fixed_point_without_tags(s in "([a-z <>/&;\"=!-]|<b>|</b>|&lt;|&amp;|<script>){0,30}") {
            let text = plain_text(&s);
            prop_assert_eq!(plain_text(&text), text.clone());
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

//! Text that others supplied and people will read (a client's name on the consent page): only
//! characters that show as themselves. Controls, format characters (the bidi overrides and isolates
//! U+202A–U+202E, U+2066–U+2069, the marks U+200E/U+200F, zero-width joiners and spaces, soft hyphen,
//! tag characters), line and paragraph separators, private-use and unassigned code points are
//! refused: each can make text read as something it is not ("Latchkey Admin\u{202E}", a name that
//! reverses the redirect host printed after it).

use unicode_general_category::{GeneralCategory, get_general_category};

/// Whether every character of `text` displays as itself.
pub fn is_displayable(text: &str) -> bool {
    text.chars().all(|c| {
        !matches!(
            get_general_category(c),
            GeneralCategory::Control
                | GeneralCategory::Format
                | GeneralCategory::LineSeparator
                | GeneralCategory::ParagraphSeparator
                | GeneralCategory::PrivateUse
                | GeneralCategory::Surrogate
                | GeneralCategory::Unassigned
        )
    })
}

#[cfg(test)]
mod tests {
    use super::is_displayable;

    #[test]
    fn only_characters_that_show_as_themselves() {
        for fine in ["Claude", "Cursor IDE", "Ünïcødé Äpp", "東京アプリ", "مرحبا", "App 🚀", "Ready, set — go!"] {
            assert!(is_displayable(fine), "{fine:?}");
        }
        for spoof in [
            "Evil\u{202E}gnp.exe",
            "a\u{2066}b\u{2069}",
            "left\u{200F}",
            "zero\u{200B}width",
            "join\u{200D}er",
            "soft\u{00AD}hyphen",
            "bom\u{FEFF}",
            "tag\u{E0041}",
            "line\u{2028}break",
            "bell\u{7}",
            "private\u{E000}",
        ] {
            assert!(!is_displayable(spoof), "{spoof:?}");
        }
    }
}

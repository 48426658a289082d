//! Rules for the free text shoppers type into fields that are stored and shown: names, address
//! titles and lines, notification texts, processor tokens.
//!
//! - **No card numbers** (PCI DSS v4.0 requirements 3.3 and 3.4: the service must never hold a
//!   primary account number). [`find_card_number`] finds a run of 13–19 digits that passes the
//!   Luhn check (ISO/IEC 7812-1 Annex B), written whole (`4111111111111111`) or in groups with up
//!   to three spaces or dashes between them (`5555 5555 5555 4444`, `3782-822463-10005`).
//!   Fullwidth and Arabic-Indic digits count as digits, and Unicode format characters inside the
//!   number are ignored, so `4111\u{200B}1111…` is found too. Phone numbers (at most 12 digits in
//!   our markets), dates, postal codes and house numbers are too short to be one; letters,
//!   punctuation other than dashes (`.`, `,`, `/`, `(`), or four separators in a row end a run.
//!   A run is tried as every sequence of whole groups, so `12 4111 1111 1111 1111` is found; a
//!   single group longer than 19 digits is an identifier, not a card, and is left alone.
//! - **Text people see shows what it says** (Unicode Technical Report #36, §2.1 bidirectional
//!   text spoofing; UTS #39 for invisible characters). [`check_display_text`] refuses every
//!   character of general category Cf (format): the bidirectional overrides and isolates
//!   (U+202A–U+202E, U+2066–U+2069; `Anna`, U+202E, `gpj.exe` reads as `Annaexe.jpg`), the
//!   zero-width space, joiners and no-break space (U+200B–U+200D, U+2060, U+FEFF), the soft
//!   hyphen, tag characters… It also asks for at least one visible character: not whitespace, not a
//!   combining mark alone, not a filler that renders blank (Hangul fillers U+115F, U+1160,
//!   U+3164, U+FFA0; the blank Braille pattern U+2800), not unassigned.
//!
//! The general category comes from `unicode-properties` (the unicode-rs project's tables of
//! UAX #44); the standard library has no general-category lookup.

use std::ops::Range;

use unicode_properties::{GeneralCategory, GeneralCategoryGroup, UnicodeGeneralCategory};

use crate::field::FieldError;

/// The [`FieldError::reason`] of a field that holds a card number. The API answers it with its
/// own code, `card_number_in_text` ([`FieldError::is_card_number_in_text`]).
pub const CARD_NUMBER_IN_TEXT: &str = "must not contain a card number";
/// The [`FieldError::reason`] of display text with a Unicode format character.
pub const FORMAT_CHARACTER_IN_TEXT: &str = "must not contain invisible formatting characters (bidirectional controls, zero-width characters)";
/// The [`FieldError::reason`] of display text with nothing visible in it.
pub const NOTHING_VISIBLE_IN_TEXT: &str = "must contain a visible character";

/// Fewest digits of a card number searched for (the issue's rule; ISO/IEC 7812 allows 8–19, but
/// shorter runs are phone numbers and order numbers, and no scheme we serve issues them).
pub const MIN_CARD_DIGITS: usize = 13;
/// Most digits of a card number (ISO/IEC 7812-1).
pub const MAX_CARD_DIGITS: usize = 19;
/// Most separator characters (spaces, dashes) between two digit groups of one number.
const MAX_SEPARATORS: usize = 3;

/// The value of a decimal digit as people type it: ASCII, fullwidth (CJK input methods) and the
/// two Arabic-Indic sets (Arabic and Persian keyboards).
fn digit_value(c: char) -> Option<u8> {
    let from = |zero: char| u8::try_from(u32::from(c) - u32::from(zero)).ok();
    match c {
        '0'..='9' => from('0'),
        '\u{FF10}'..='\u{FF19}' => from('\u{FF10}'),
        '\u{0660}'..='\u{0669}' => from('\u{0660}'),
        '\u{06F0}'..='\u{06F9}' => from('\u{06F0}'),
        _ => None,
    }
}

/// Whitespace and the dashes people put between digit groups.
fn is_separator(c: char) -> bool {
    c.is_whitespace()
        || matches!(
            c,
            '-' | '\u{2010}'..='\u{2015}' | '\u{2212}' | '\u{FE58}' | '\u{FE63}' | '\u{FF0D}'
        )
}

/// Luhn mod-10 check over digit values.
fn luhn(digits: &[u8]) -> bool {
    let sum: u32 = digits
        .iter()
        .rev()
        .enumerate()
        .map(|(i, &d)| {
            let d = u32::from(d);
            if i % 2 == 1 {
                let d = d * 2;
                if d > 9 { d - 9 } else { d }
            } else {
                d
            }
        })
        .sum();
    !digits.is_empty() && sum.is_multiple_of(10)
}

/// A maximal sequence of digits (format characters inside ignored), with its byte span.
struct Group {
    span: Range<usize>,
    digits: Vec<u8>,
}

/// The first card number in a run of groups, as a byte span.
fn card_in_run(run: &[Group]) -> Option<Range<usize>> {
    let mut digits = Vec::with_capacity(MAX_CARD_DIGITS);
    for (i, first) in run.iter().enumerate() {
        digits.clear();
        for last in &run[i..] {
            digits.extend_from_slice(&last.digits);
            if digits.len() > MAX_CARD_DIGITS {
                break;
            }
            if digits.len() >= MIN_CARD_DIGITS && luhn(&digits) {
                return Some(first.span.start..last.span.end);
            }
        }
    }
    None
}

/// The byte span of the first card number in `text` (see the module documentation for what
/// counts as one), or `None`.
pub fn find_card_number(text: &str) -> Option<Range<usize>> {
    let mut run: Vec<Group> = Vec::new();
    let mut in_group = false;
    let mut separators = 0;
    for (i, c) in text.char_indices() {
        let end = i + c.len_utf8();
        if let Some(d) = digit_value(c) {
            match run.last_mut() {
                Some(group) if in_group => {
                    group.digits.push(d);
                    group.span.end = end;
                }
                _ => run.push(Group {
                    span: i..end,
                    digits: vec![d],
                }),
            }
            in_group = true;
            separators = 0;
        } else if is_format_character(c) {
            // Invisible: neither ends a group nor separates one.
        } else if is_separator(c) && !run.is_empty() && separators < MAX_SEPARATORS {
            in_group = false;
            separators += 1;
        } else {
            if let Some(found) = card_in_run(&run) {
                return Some(found);
            }
            run.clear();
            in_group = false;
            separators = 0;
        }
    }
    card_in_run(&run)
}

/// Whether `text` holds a card number ([`find_card_number`]).
pub fn contains_card_number(text: &str) -> bool {
    find_card_number(text).is_some()
}

/// `text` with every card number replaced by `…`: for text the service writes itself from
/// untrusted input (the device named in a sign-in notice), where refusing is not an option.
pub fn redact_card_numbers(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(span) = find_card_number(rest) {
        out.push_str(&rest[..span.start]);
        out.push('…');
        rest = &rest[span.end..];
    }
    out.push_str(rest);
    out
}

/// `text` made fit for display: format characters dropped and card numbers replaced by `…`.
/// For text stored before these rules existed (issue 12), so that reading an old row neither
/// fails nor shows a card number or a bidi override. Text that passes [`check_display_text`]
/// comes back unchanged.
pub fn clean_display_text(text: &str) -> String {
    let visible: String = text.chars().filter(|c| !is_format_character(*c)).collect();
    redact_card_numbers(&visible)
}

/// Whether `c` is a Unicode format character (general category Cf): bidirectional controls,
/// zero-width characters, the soft hyphen, tag characters…
pub fn is_format_character(c: char) -> bool {
    c.general_category() == GeneralCategory::Format
}

/// Letters and symbols that render as blank space (used to make names look empty).
const BLANK_LOOKING: [char; 5] = ['\u{115F}', '\u{1160}', '\u{3164}', '\u{FFA0}', '\u{2800}'];

/// Whether `c` shows on its own: not whitespace, control, format or unassigned, not a combining
/// mark (it shows only on a base character), not a blank-looking filler.
pub fn is_visible(c: char) -> bool {
    !c.is_whitespace()
        && !BLANK_LOOKING.contains(&c)
        && !matches!(
            c.general_category_group(),
            GeneralCategoryGroup::Mark | GeneralCategoryGroup::Separator
        )
        && !matches!(
            c.general_category(),
            GeneralCategory::Control
                | GeneralCategory::Format
                | GeneralCategory::Unassigned
                | GeneralCategory::Surrogate
        )
}

/// Free text that is stored but not shown to other people as text (a processor token): no card
/// number.
///
/// # Errors
///
/// [`FieldError`] on `field` with reason [`CARD_NUMBER_IN_TEXT`].
pub fn check_free_text(field: &'static str, text: &str) -> Result<(), FieldError> {
    if contains_card_number(text) {
        return Err(FieldError::card_number_in_text(field));
    }
    Ok(())
}

/// Text that people see (a name, an address title or line, a notification): no card number, no
/// Unicode format character, at least one visible character. Length and control characters are
/// the caller's rules.
///
/// # Errors
///
/// [`FieldError`] on `field`, with reason [`CARD_NUMBER_IN_TEXT`] (checked first),
/// [`FORMAT_CHARACTER_IN_TEXT`] or [`NOTHING_VISIBLE_IN_TEXT`].
pub fn check_display_text(field: &'static str, text: &str) -> Result<(), FieldError> {
    check_free_text(field, text)?;
    if text.chars().any(is_format_character) {
        return Err(FieldError::new(field, FORMAT_CHARACTER_IN_TEXT));
    }
    if !text.chars().any(is_visible) {
        return Err(FieldError::new(field, NOTHING_VISIBLE_IN_TEXT));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::payment::luhn_valid;

    fn found(text: &str) -> Option<&str> {
        find_card_number(text).map(|span| &text[span])
    }

    #[test]
    fn the_issues_examples_are_found() {
        assert_eq!(found("tok_4012888888881881_0431"), Some("4012888888881881"));
        assert_eq!(
            found("Дом 5555 5555 5555 4444"),
            Some("5555 5555 5555 4444")
        );
        assert_eq!(
            found("Anna 5555 5555 5555 4444"),
            Some("5555 5555 5555 4444")
        );
    }

    #[test]
    fn separators_scripts_and_invisible_characters() {
        for (text, card) in [
            ("4111111111111111", "4111111111111111"),
            ("x4111-1111-1111-1111y", "4111-1111-1111-1111"),
            ("Amex 3782 822463 10005.", "3782 822463 10005"),
            ("4111 - 1111 1111 1111", "4111 - 1111 1111 1111"),
            (
                "4111\u{a0}1111\u{2007}1111\u{2013}1111",
                "4111\u{a0}1111\u{2007}1111\u{2013}1111",
            ),
            (
                "４１１１ １１１１ １１１１ １１１１",
                "４１１１ １１１１ １１１１ １１１１",
            ),
            (
                "4111\u{200B}1111\u{200B}1111\u{200B}1111",
                "4111\u{200B}1111\u{200B}1111\u{200B}1111",
            ),
            ("кв. 12 4111 1111 1111 1111", "4111 1111 1111 1111"),
            ("4111 1111 1111 1111 04 28", "4111 1111 1111 1111"),
            ("4222222222222", "4222222222222"),
            ("line\n4111 1111 1111 1111\n", "4111 1111 1111 1111"),
        ] {
            let got = found(text).unwrap_or_else(|| panic!("{text:?}"));
            assert!(got.contains(card), "{text:?}: {got:?}");
        }
    }

    #[test]
    fn ordinary_numbers_are_not_cards() {
        for text in [
            "",
            "Анна Ахматова",
            "+996 555 123 456",
            "+1 (212) 555-0100",
            "+1 212 555 0100",
            "0555 123 456",
            "2026-02-01",
            "01.02.2026 10:30",
            "720000",
            "10001-1234",
            "ул. Юнусалиева, 34, кв. 12",
            "123 Main St, Apt 4B",
            "Заказ №1042",
            // Luhn-valid, but a dot, a slash or four spaces end the run.
            "4111.1111.1111.1111",
            "4111/1111/1111/1111",
            "4111    1111 1111 1111",
            // A 20-digit identifier is not a card, nor a 12-digit Luhn-valid number.
            "41111111111111111113",
            "411111111116",
            // Luhn-invalid.
            "4111 1111 1111 1112",
        ] {
            assert_eq!(found(text), None, "{text:?}");
        }
    }

    #[test]
    fn redaction_keeps_the_rest() {
        assert_eq!(
            redact_card_numbers("Firefox 4111 1111 1111 1111 on 5555555555554444!"),
            "Firefox … on …!"
        );
        assert_eq!(redact_card_numbers("Firefox/128.0"), "Firefox/128.0");
    }

    #[test]
    fn cleaning_old_text() {
        assert_eq!(
            clean_display_text("Anna\u{202E}gpj.exe 5555 5555 5555 4444"),
            "Annagpj.exe …"
        );
        assert_eq!(clean_display_text("\u{200B}"), "");
        for ok in ["Анна Ахматова", "123 Main St, Apt 4B", "+996 555 123 456"] {
            assert_eq!(clean_display_text(ok), ok);
        }
    }

    #[test]
    fn display_text_rules() {
        for ok in [
            "Анна Ахматова",
            "Zoë O'Neil",
            "Jose\u{301}",
            "李小龍",
            "Дом",
            "a",
            "34",
            "line 1\nline 2",
            "😀",
        ] {
            assert_eq!(check_display_text("full_name", ok), Ok(()), "{ok:?}");
        }
        for (bad, reason) in [
            ("Anna\u{202E}gpj.exe", FORMAT_CHARACTER_IN_TEXT),
            ("\u{202A}Anna", FORMAT_CHARACTER_IN_TEXT),
            ("\u{2066}Anna\u{2069}", FORMAT_CHARACTER_IN_TEXT),
            ("\u{2067}Anna", FORMAT_CHARACTER_IN_TEXT),
            ("\u{2068}Anna", FORMAT_CHARACTER_IN_TEXT),
            ("An\u{200B}na", FORMAT_CHARACTER_IN_TEXT),
            ("An\u{200C}na", FORMAT_CHARACTER_IN_TEXT),
            ("An\u{200D}na", FORMAT_CHARACTER_IN_TEXT),
            ("An\u{2060}na", FORMAT_CHARACTER_IN_TEXT),
            ("\u{FEFF}Anna", FORMAT_CHARACTER_IN_TEXT),
            ("An\u{AD}na", FORMAT_CHARACTER_IN_TEXT),
            ("Anna\u{E0041}", FORMAT_CHARACTER_IN_TEXT),
            ("Anna\u{200E}", FORMAT_CHARACTER_IN_TEXT),
            ("\u{301}\u{308}", NOTHING_VISIBLE_IN_TEXT),
            ("\u{3164}", NOTHING_VISIBLE_IN_TEXT),
            ("\u{115F}\u{1160}", NOTHING_VISIBLE_IN_TEXT),
            ("\u{2800}", NOTHING_VISIBLE_IN_TEXT),
            ("\u{3000}\u{a0}", NOTHING_VISIBLE_IN_TEXT),
            ("Anna 4111 1111 1111 1111", CARD_NUMBER_IN_TEXT),
            ("Anna\u{202E} 4111 1111 1111 1111", CARD_NUMBER_IN_TEXT),
        ] {
            let e = check_display_text("full_name", bad).unwrap_err();
            assert_eq!((e.field, e.reason), ("full_name", reason), "{bad:?}");
        }
        let e = check_free_text("provider_token", "pm_4111111111111111").unwrap_err();
        assert!(e.is_card_number_in_text());
        assert_eq!(e.code(), "card_number_in_text");
        assert_eq!(
            FieldError::new("x", "is required").code(),
            "validation_error"
        );
    }

    /// Text around a card number: letters, punctuation (never a digit or separator next to it).
    fn filler() -> impl Strategy<Value = String> {
        "[a-zA-Zа-яА-Я.,:;!?()/ ]{0,20}".prop_map(|s| {
            if s.is_empty() {
                s
            } else {
                format!(" {}x ", s.trim())
            }
        })
    }

    /// A card number of `len` digits (completed with its Luhn digit).
    fn pan() -> impl Strategy<Value = String> {
        (MIN_CARD_DIGITS..=MAX_CARD_DIGITS)
            .prop_flat_map(|len| proptest::collection::vec(0u8..10, len - 1))
            .prop_map(|body| {
                let body: String = body.iter().map(|d| char::from(b'0' + d)).collect();
                (0..10)
                    .map(|d| format!("{body}{d}"))
                    .find(|n| luhn_valid(n))
                    .unwrap_or_default()
            })
    }

    proptest! {
        #[test]
        fn any_card_with_any_separators_is_found(
            pan in pan(),
            cuts in proptest::collection::vec((1usize..19, "[ \u{a0}-]{1,3}"), 0..5),
            before in filler(),
            after in filler(),
        ) {
            let mut number = pan.clone();
            let mut cuts: Vec<_> = cuts.into_iter().filter(|(at, _)| *at < pan.len()).collect();
            cuts.sort_by_key(|c| std::cmp::Reverse(c.0));
            cuts.dedup_by_key(|c| c.0);
            for (at, sep) in cuts {
                number.insert_str(at, &sep);
            }
            let text = format!("{before}{number}{after}");
            let span = find_card_number(&text);
            prop_assert!(span.is_some(), "{:?}", text);
            let digits: String = text[span.unwrap()].chars().filter(char::is_ascii_digit).collect();
            prop_assert!(pan.contains(&digits), "{:?} in {:?}", digits, text);
            prop_assert_eq!(
                check_display_text("title", &text).unwrap_err().reason,
                CARD_NUMBER_IN_TEXT
            );
        }

        #[test]
        fn phone_numbers_dates_and_postcodes_are_not_cards(
            kg in "[2-9][0-9]{8}",
            us in "[2-9][0-9]{2}[2-9][0-9]{6}",
            (y, m, d) in (1900u32..2100, 1u32..13, 1u32..29),
            zip in "[0-9]{5}(-[0-9]{4})?",
            kg_post in "7[0-9]{5}",
            house in "[0-9]{1,4}[a-zА-Я]?",
        ) {
            for text in [
                format!("+996 {} {} {}", &kg[..3], &kg[3..6], &kg[6..]),
                format!("+996{kg}"),
                format!("0{kg}"),
                format!("+1 ({}) {}-{}", &us[..3], &us[3..6], &us[6..]),
                format!("+1{us}"),
                format!("{y:04}-{m:02}-{d:02}"),
                format!("{d:02}.{m:02}.{y:04}"),
                format!("{m}/{d}/{y}"),
                format!("ул. Токтогула, {house}, {kg_post}, Бишкек"),
                format!("{house} Main St, New York, NY {zip}"),
                format!("Звонить +996{kg} с {d:02}.{m:02}.{y:04}"),
            ] {
                prop_assert_eq!(find_card_number(&text), None, "{:?}", text);
                prop_assert_eq!(check_display_text("title", &text), Ok(()), "{:?}", text);
            }
        }

        #[test]
        fn never_panics(text in any::<String>()) {
            if let Some(span) = find_card_number(&text) {
                prop_assert!(text.get(span).is_some());
            }
            let _ = redact_card_numbers(&text);
            let cleaned = clean_display_text(&text);
            prop_assert!(!contains_card_number(&cleaned));
            prop_assert!(!cleaned.chars().any(is_format_character));
            let _ = check_display_text("x", &text);
        }
    }
}

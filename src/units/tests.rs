#[test]
fn a_change_printed_finer_than_its_values_is_still_the_true_change() {
    // Found by the property below: 569.75GB → 568.8GB printed "-950MB" for a 954.1MB drop,
    // because the values were exact to 5MB and the change was printed to the MB.
    let c = fmt_change(
        569_751_072_626.808_5,
        568_796_940_719.626_6,
        Dimension::Bytes,
        "",
    );
    assert_eq!(
        (c.before.as_str(), c.after.as_str()),
        ("569.751GB", "568.797GB")
    );
    assert_eq!(c.delta, "-954MB");
}

#[test]
fn absurd_uptimes_are_refused_not_computed() {
    let at = chrono::DateTime::from_timestamp(1_790_000_000, 0).unwrap();
    for bad in [1e17, f64::NAN, f64::INFINITY, -1.0] {
        assert!(super::checked_uptime(bad).is_err(), "{bad}");
    }
    assert_eq!(super::checked_uptime(3600.5), Ok(3600));
    assert_eq!(super::boot_time(at, u64::MAX), None);
    assert_eq!(super::boot_time(at, 100_000_000_000_000_000), None);
    assert_eq!(
        super::boot_time(at, 60).unwrap().timestamp(),
        1_790_000_000 - 60
    );
}

use super::*;

#[test]
fn parses_sizes_durations_and_rates() {
    assert_eq!(parse_bytes("414MB").unwrap(), 414e6);
    assert_eq!(parse_bytes("1GiB").unwrap(), 1073741824.0);
    assert_eq!(parse_bytes("0B").unwrap(), 0.0);
    assert_eq!(parse_duration_secs("15m").unwrap(), 900.0);
    assert_eq!(parse_duration_secs("1h30m").unwrap(), 5400.0);
    assert_eq!(parse_duration_secs("74s").unwrap(), 74.0);
    assert!((parse_rate_per_sec("+2.7MB/h", Dimension::Bytes).unwrap() - 750.0).abs() < 1e-9);
    assert!((parse_rate_per_sec("-1.5/min", Dimension::Plain).unwrap() + 0.025).abs() < 1e-12);
}

#[test]
fn bad_units_name_the_unit_and_the_choices() {
    let e = parse_bytes("12XB").unwrap_err();
    assert!(e.contains("unknown size unit `XB`"), "{e}");
    assert!(e.contains("MiB"), "{e}");
    let e = parse_duration_secs("15 fortnights").unwrap_err();
    assert!(e.contains("fortnights"), "{e}");
    assert!(
        parse_duration_secs("15")
            .unwrap_err()
            .contains("needs a unit")
    );
}

#[test]
fn change_is_the_difference_of_what_is_printed() {
    // The seed called 414 → 315 a 100MB drop.
    let c = fmt_change(414e6, 315e6, Dimension::Bytes, "");
    assert_eq!(
        (c.before.as_str(), c.after.as_str(), c.delta.as_str()),
        ("414MB", "315MB", "-99MB")
    );
    // A small change on a large value keeps its digits.
    let c = fmt_change(1082e6, 1094e6, Dimension::Bytes, "");
    assert_eq!(
        (c.before.as_str(), c.after.as_str(), c.delta.as_str()),
        ("1.082GB", "1.094GB", "+12MB")
    );
    // Values far apart are printed in their own units; the change still adds up.
    let c = fmt_change(78.7e6, 4.54e9, Dimension::Bytes, "");
    assert_eq!(
        (c.before.as_str(), c.after.as_str(), c.delta.as_str()),
        ("78.7MB", "4.54GB", "+4.461GB")
    );
    let c = fmt_change(18.0, 27.0, Dimension::Plain, "°C");
    assert_eq!(
        (c.before.as_str(), c.after.as_str(), c.delta.as_str()),
        ("18°C", "27°C", "+9°C")
    );
    let c = fmt_change(15.8e9, 16.1e9, Dimension::Bytes, "");
    assert_eq!(c.delta, "+300MB");
    // Both values keep three significant digits (the reboot drop of F48).
    let c = fmt_change(16.7e9, 1.17e9, Dimension::Bytes, "");
    assert_eq!(
        (c.before.as_str(), c.after.as_str(), c.delta.as_str()),
        ("16.7GB", "1.17GB", "-15.53GB")
    );
}

#[test]
fn a_change_keeps_the_digits_its_true_size_needs() {
    // Issue 15: 195,372,195 → 168,674,721 B printed "195MB → 169MB (-26MB)", a 26.7MB drop.
    let c = fmt_change(195_372_195.0, 168_674_721.0, Dimension::Bytes, "");
    assert_eq!(
        (c.before.as_str(), c.after.as_str(), c.delta.as_str()),
        ("195.4MB", "168.7MB", "-26.7MB")
    );
    // Printed next to a limit, a value keeps the digits the distance needs.
    assert_eq!(fmt_near(15.848e9, 16e9, Dimension::Bytes, ""), "15.85GB");
    assert_eq!(fmt_near(782e9, 1e12, Dimension::Bytes, ""), "782GB");
    assert!(!ratio_scale(Dimension::Plain, "°C"));
    assert!(ratio_scale(Dimension::Bytes, ""));
    assert_eq!(fmt_duration_shown(924.0).0, "15.4 min");
    assert_eq!(
        fmt_rate_of(1290.0, 924.0, Dimension::Plain, "", RatePer::Minute).0,
        "+84/min"
    );
}

#[test]
fn sizes_rates_and_durations_print_compactly() {
    assert_eq!(fmt_bytes(5.97e9), "5.97GB");
    assert_eq!(fmt_bytes(78.7e6), "78.7MB");
    assert_eq!(
        fmt_rate(2.9e9 / 3600.0, Dimension::Bytes, "", RatePer::Hour),
        "+2.9GB/h"
    );
    assert_eq!(fmt_duration(74.0), "74 s");
    assert_eq!(fmt_duration(17.0 * 60.0), "17 min");
    assert_eq!(fmt_duration(2.25 * 3600.0), "2.25 h");
    assert_eq!(fmt_uptime(6846), "6846 s = 1.9 h");
}

#[test]
fn durations_out_of_their_range_are_errors_not_panics() {
    assert!(
        parse_duration_secs("1e400s").is_err(),
        "an infinite duration"
    );
    let e = parse_duration_in("99999999999999d", DurationRange::TIMEOUT).unwrap_err();
    assert!(e.contains("at most"), "{e}");
    assert!(parse_duration_in("1000000000w", DurationRange::SPAN).is_err());
    assert!(parse_duration_in("0m", DurationRange::SPAN).is_err());
    assert!(parse_duration_in("0s", DurationRange::WAIT).is_ok());
    assert!(parse_duration_in("0.5s", DurationRange::INTERVAL).is_err());
    assert_eq!(
        parse_duration_in("1h", DurationRange::TIMEOUT).unwrap(),
        std::time::Duration::from_secs(3600)
    );
}

mod properties {
    use super::super::*;
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        #[test]
        fn parsers_never_panic(text in "[-+0-9._a-zA-Z/%° ]{0,24}") {
            let _ = parse_bytes(&text);
            let _ = parse_duration_secs(&text);
            let _ = parse_plain(&text);
            let _ = parse_rate_per_sec(&text, Dimension::Bytes);
            let _ = parse_rate_per_sec(&text, Dimension::Plain);
            for range in [DurationRange::TIMEOUT, DurationRange::SPAN, DurationRange::INTERVAL, DurationRange::WAIT] {
                if let Ok(d) = parse_duration_in(&text, range) {
                    prop_assert!(range.contains(d.as_secs_f64()));
                }
            }
        }

        #[test]
        fn whole_durations_round_trip(n in 0u64..10_000_000, unit in 0usize..TIME_UNITS.len()) {
            let (name, factor) = TIME_UNITS[unit];
            let secs = parse_duration_secs(&format!("{n}{name}")).unwrap();
            prop_assert!((secs - n as f64 * factor).abs() <= 1e-9 * secs.max(1.0));
        }

        #[test]
        fn printed_sizes_read_back_close(v in 0.0f64..1e15) {
            // fmt_bytes keeps three significant digits: reading it back is within half a
            // unit of the third digit.
            let back = parse_bytes(&fmt_bytes(v)).unwrap();
            prop_assert!((back - v).abs() <= v * 0.005 + 0.5, "{} -> {}", v, back);
        }

        #[test]
        fn a_change_is_the_difference_of_its_printed_values(a in 0.0f64..1e13, b in 0.0f64..1e13) {
            let c = fmt_change(a, b, Dimension::Bytes, "");
            prop_assert!((parse_bytes(&c.before).unwrap() - c.shown_before).abs() <= 1e-6 * c.shown_before.max(1.0));
            prop_assert!((parse_bytes(&c.after).unwrap() - c.shown_after).abs() <= 1e-6 * c.shown_after.max(1.0));
        }

        #[test]
        fn a_printed_change_is_the_true_change_to_its_last_digit(a in 1e6f64..1e12, b in 1e6f64..1e12) {
            let c = fmt_change(a, b, Dimension::Bytes, "");
            let unit = c.delta.trim_start_matches(['+', '-']).trim_start_matches(|ch: char| ch.is_ascii_digit() || ch == '.');
            let digits = c.delta.split_once('.').map(|(_, d)| d.trim_end_matches(|ch: char| !ch.is_ascii_digit()).len()).unwrap_or(0);
            let half = 0.5 * 10f64.powi(-(digits as i32)) * parse_bytes(&format!("1{unit}")).unwrap();
            let big_small = a.max(b) / a.min(b);
            // Values more than 20x apart print in their own units; their change is derived
            // from what is printed (checked above), not re-rounded.
            prop_assume!(big_small <= 20.0);
            prop_assert!((c.shown_delta - (b - a)).abs() <= half * 1.000001, "{} → {} ({}) for {} → {}", c.before, c.after, c.delta, a, b);
        }

        #[test]
        fn rates_round_trip(n in 1u32..100_000) {
            let per_h = parse_rate_per_sec(&format!("+{n}MB/h"), Dimension::Bytes).unwrap();
            prop_assert!((per_h * 3600.0 - f64::from(n) * 1e6).abs() < 1e-3);
        }
    }
}

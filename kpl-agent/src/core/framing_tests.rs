use proptest::prelude::*;

use super::*;

fn records(items: &[Framed]) -> Vec<(u64, u64, &[u8])> {
    items
        .iter()
        .filter_map(|item| match item {
            Framed::Record { start, end, data, .. } => Some((*start, *end, &data[..])),
            Framed::Skip { .. } => None,
        })
        .collect()
}

fn frame(config: &FramingConfig, writes: &[&[u8]]) -> Vec<Framed> {
    let mut framer = Framer::new(0, config);
    let now = Instant::now();
    let mut out = Vec::new();
    for write in writes {
        framer.push(config, write, now, &mut out);
    }
    out
}

#[test]
fn lines_keep_their_newline_and_cr_is_stripped_on_request() {
    let config = FramingConfig::default();
    let out = frame(&config, &[b"a\r\nbb\n", b"c"]);
    assert_eq!(records(&out), vec![(0, 3, &b"a\r\n"[..]), (3, 6, b"bb\n")]);
    let config = FramingConfig { strip_cr: true, ..FramingConfig::default() };
    let out = frame(&config, &[b"a\r\nbb\n"]);
    assert_eq!(records(&out), vec![(0, 3, &b"a\n"[..]), (3, 6, b"bb\n")]);
}

#[test]
fn a_final_line_without_newline_is_sent_after_the_quiet_time_only() {
    let config = FramingConfig { partial_line_flush: Some(Duration::from_secs(2)), ..Default::default() };
    let mut framer = Framer::new(10, &config);
    let t0 = Instant::now();
    let mut out = Vec::new();
    framer.push(&config, b"x\npartial", t0, &mut out);
    framer.poll(&config, t0 + Duration::from_millis(1999), false, &mut out);
    assert_eq!(records(&out), vec![(10, 12, &b"x\n"[..])]);
    framer.poll(&config, t0 + Duration::from_secs(2), false, &mut out);
    assert_eq!(records(&out)[1], (12, 19, &b"partial"[..]));
    assert_eq!(framer.held_bytes(), 0);
    let never = FramingConfig { partial_line_flush: None, ..Default::default() };
    let mut framer = Framer::new(0, &never);
    let mut out = Vec::new();
    framer.push(&never, b"partial", t0, &mut out);
    framer.poll(&never, t0 + Duration::from_secs(3600), false, &mut out);
    assert!(out.is_empty());
    framer.poll(&never, t0, true, &mut out);
    assert_eq!(records(&out), vec![(0, 7, &b"partial"[..])]);
}

#[test]
fn a_stack_trace_written_in_several_writes_stays_one_record() {
    let config = FramingConfig {
        multi_line_start: Some(Regex::new(r"^(?:\d{4}-)").unwrap()),
        multi_line_flush: Duration::from_secs(1),
        ..Default::default()
    };
    let mut framer = Framer::new(0, &config);
    let t0 = Instant::now();
    let mut out = Vec::new();
    framer.push(&config, b"2026-01 error\n  at a\n", t0, &mut out);
    framer.push(&config, b"  at b\n", t0 + Duration::from_millis(900), &mut out);
    framer.poll(&config, t0 + Duration::from_millis(1800), false, &mut out);
    assert!(out.is_empty(), "not quiet long enough: {out:?}");
    framer.push(&config, b"2026-02 next\n", t0 + Duration::from_millis(1850), &mut out);
    assert_eq!(records(&out), vec![(0, 28, &b"2026-01 error\n  at a\n  at b\n"[..])]);
    framer.poll(&config, t0 + Duration::from_millis(2850), false, &mut out);
    assert_eq!(records(&out)[1], (28, 41, &b"2026-02 next\n"[..]));
}

#[test]
fn an_oversize_line_is_truncated_on_a_utf8_boundary_with_the_terminator() {
    let config = FramingConfig { max_record_size: 7, ..Default::default() };
    // "é" is two bytes: 6 bytes before the terminator would split the first one.
    let out = frame(&config, &[b"abcde\xc3\xa9\xc3\xa9xyz", b"more tail\nok\n"]);
    assert_eq!(records(&out), vec![(0, 12, &b"abcde\n"[..]), (22, 25, b"ok\n")]);
    let skipped: u64 = out
        .iter()
        .map(|item| match item {
            Framed::Skip { start, end, reason: SkipReason::DiscardedTail } => end - start,
            _ => 0,
        })
        .sum();
    assert_eq!(skipped, 10, "the rest of the line, newline included");
}

#[test]
fn oversize_lines_can_be_split_or_dropped() {
    let split = FramingConfig { max_record_size: 4, oversize: OversizePolicy::Split, ..Default::default() };
    let out = frame(&split, &[b"abcdefghij\n"]);
    assert_eq!(records(&out), vec![(0, 4, &b"abcd"[..]), (4, 8, b"efgh"), (8, 11, b"ij\n")]);
    let drop = FramingConfig { max_record_size: 4, oversize: OversizePolicy::Drop, ..Default::default() };
    let out = frame(&drop, &[b"abcdefghij\nab\n"]);
    assert_eq!(records(&out), vec![(11, 14, &b"ab\n"[..])]);
}

#[test]
fn header_lines_are_skipped_only_from_offset_zero() {
    let config = FramingConfig { skip_header_lines: 1, ..Default::default() };
    let out = frame(&config, &[b"h1,h2\n1,2\n"]);
    assert_eq!(records(&out), vec![(6, 10, &b"1,2\n"[..])]);
    let mut framer = Framer::new(6, &config);
    let mut out = Vec::new();
    framer.push(&config, b"1,2\n", Instant::now(), &mut out);
    assert_eq!(records(&out), vec![(6, 10, &b"1,2\n"[..])]);
}

proptest! {
    /// Whatever the writes, sizes and policy: items are contiguous from the start offset to what was
    /// consumed (less what is held), records are within the size limit, and without oversize lines the
    /// records are exactly the lines.
    #[test]
    fn items_are_contiguous_and_within_the_limit(
        lines in prop::collection::vec("[a-zé]{0,12}", 0..20),
        cuts in prop::collection::vec(1usize..9, 1..10),
        max in 4usize..16,
        policy in prop_oneof![Just(OversizePolicy::Truncate), Just(OversizePolicy::Split), Just(OversizePolicy::Drop)],
        multi in any::<bool>(),
    ) {
        let config = FramingConfig {
            max_record_size: max,
            oversize: policy,
            multi_line_start: multi.then(|| Regex::new("^(?:[a-m])").unwrap()),
            ..Default::default()
        };
        let text: Vec<u8> = lines.iter().flat_map(|l| format!("{l}\n").into_bytes()).collect();
        let mut framer = Framer::new(3, &config);
        let mut out = Vec::new();
        let t0 = Instant::now();
        let mut at = 0;
        for cut in cuts.iter().cycle() {
            if at >= text.len() { break; }
            let end = (at + cut).min(text.len());
            framer.push(&config, &text[at..end], t0, &mut out);
            at = end;
        }
        framer.poll(&config, t0, true, &mut out);
        let mut next = 3;
        for item in &out {
            let (start, end) = match item {
                Framed::Record { start, end, data, .. } => {
                    prop_assert!(data.len() <= max, "{} > {max}", data.len());
                    (*start, *end)
                }
                Framed::Skip { start, end, .. } => (*start, *end),
            };
            prop_assert_eq!(start, next);
            prop_assert!(end >= start);
            next = end;
        }
        prop_assert_eq!(next, 3 + text.len() as u64);
        if !multi && lines.iter().all(|l| l.len() < max) {
            let sent: Vec<Vec<u8>> = records(&out).into_iter().map(|r| r.2.to_vec()).collect();
            let expected: Vec<Vec<u8>> = lines.iter().map(|l| format!("{l}\n").into_bytes()).collect();
            prop_assert_eq!(sent, expected);
        }
    }
}

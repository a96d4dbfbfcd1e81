use std::collections::BTreeSet;
use std::time::Duration;

use proptest::prelude::*;

use crate::core::Notice;
use crate::core::testing::{Harness, VirtualFs};

const NONE: &BTreeSet<u64> = &BTreeSet::new();

fn step(harness: &mut Harness, fs: &mut VirtualFs) {
    harness.scan(fs);
    harness.read(fs, 100);
    harness.deliver(|_| true);
    harness.save();
}

fn notices(harness: &mut Harness) -> Vec<Notice> {
    harness.tailer.take_notices()
}

/// Everything written was delivered, each line exactly once.
fn assert_all_once(harness: &Harness, fs: &VirtualFs) {
    assert_eq!(harness.delivered.len() as u64, fs.written(), "every line delivered");
    assert_eq!(harness.deliveries, fs.written(), "no line delivered twice");
}

#[test]
fn rename_rotation_loses_nothing_and_sends_nothing_twice() {
    let (mut fs, mut harness) = (VirtualFs::default(), Harness::new(true));
    fs.write_lines("app.log", 10);
    step(&mut harness, &mut fs);
    fs.write_lines("app.log", 5);
    fs.rename("app.log", "app.log.1", NONE);
    // The writer still has the old file open for a moment.
    fs.write_lines("app.log.1", 3);
    fs.write_lines("app.log", 4);
    harness.drain(&mut fs);
    assert_all_once(&harness, &fs);
    assert!(notices(&mut harness).iter().any(|n| matches!(n, Notice::Gone { .. })));
    assert_eq!(harness.tailer.tracked_files(), 1, "the rotated file was closed once drained");
}

#[test]
fn copytruncate_resumes_in_the_copy_and_reads_the_new_content_from_zero() {
    let (mut fs, mut harness) = (VirtualFs::default(), Harness::new(false));
    fs.write_lines("app.log", 10);
    step(&mut harness, &mut fs);
    fs.write_lines("app.log", 5); // not read before the rotation
    fs.copy("app.log", "app.log.1", NONE);
    fs.truncate("app.log", NONE);
    fs.write_lines("app.log", 3);
    harness.drain(&mut fs);
    assert_all_once(&harness, &fs);
    assert!(notices(&mut harness).iter().any(|n| matches!(n, Notice::CopyTruncated { offset: 90, .. })));
}

#[test]
fn a_truncation_refilled_past_the_old_size_between_two_scans_is_seen() {
    let (mut fs, mut harness) = (VirtualFs::default(), Harness::new(false));
    fs.write_lines("app.log", 10);
    step(&mut harness, &mut fs);
    fs.write_lines("app.log", 2);
    fs.copy("app.log", "app.log.1", NONE);
    fs.truncate("app.log", NONE);
    fs.write_lines("app.log", 30);
    harness.drain(&mut fs);
    assert_all_once(&harness, &fs);
}

#[test]
fn a_copy_seen_before_its_truncation_is_resumed_not_resent() {
    let (mut fs, mut harness) = (VirtualFs::default(), Harness::new(false));
    fs.write_lines("app.log", 200); // over 1 KiB: a full fingerprint
    step(&mut harness, &mut fs);
    fs.copy("app.log", "app.log.1", NONE);
    step(&mut harness, &mut fs); // the copy is held back
    fs.truncate("app.log", NONE);
    fs.write_lines("app.log", 3);
    harness.drain(&mut fs);
    assert_all_once(&harness, &fs);
}

#[test]
fn a_plain_copy_is_sent_again_after_the_hold_rather_than_never() {
    let (mut fs, mut harness) = (VirtualFs::default(), Harness::new(false));
    fs.write_lines("app.log", 200);
    step(&mut harness, &mut fs);
    fs.copy("app.log", "app.log.copy", NONE);
    harness.drain(&mut fs);
    assert_eq!(harness.delivered.len() as u64, fs.written());
    assert_eq!(harness.deliveries, 400, "the copy is read once from 0");
}

#[test]
fn compress_then_delete_loses_nothing_and_skips_the_archive() {
    let (mut fs, mut harness) = (VirtualFs::default(), Harness::new(false));
    fs.write_lines("app.log", 10);
    harness.scan(&mut fs); // opened, nothing read yet
    fs.rename("app.log", "app.log.1", NONE);
    fs.copy("app.log.1", "app.log.1.gz", NONE);
    fs.unlink("app.log.1", NONE);
    fs.write_lines("app.log", 2);
    harness.drain(&mut fs);
    assert!(fs.lost_without_blame.is_empty());
    assert_all_once(&harness, &fs);
}

#[test]
fn a_reused_inode_is_a_new_file_read_from_zero() {
    let (mut fs, mut harness) = (VirtualFs::default(), Harness::new(true));
    fs.write_lines("app.log", 10);
    step(&mut harness, &mut fs);
    fs.unlink("app.log", NONE);
    harness.crash_and_restart(&mut fs); // the old inode is freed now
    let first_new = fs.write_lines("app.log", 4); // gets the same inode number
    harness.drain(&mut fs);
    assert!(notices(&mut harness).iter().any(|n| matches!(n, Notice::InodeReused { .. })));
    assert!((first_new..first_new + 4).all(|line| harness.delivered.contains(&line)));
    assert_all_once(&harness, &fs);
}

#[test]
fn several_live_files_are_read_side_by_side() {
    let (mut fs, mut harness) = (VirtualFs::default(), Harness::new(false));
    for round in 0..5 {
        for name in ["app.log", "app.log.a", "app.log.b"] {
            fs.write_lines(name, round + 1);
        }
        step(&mut harness, &mut fs);
    }
    assert_eq!(harness.tailer.readable().count(), 3);
    assert_all_once(&harness, &fs);
}

#[test]
fn after_a_crash_only_what_was_in_flight_is_sent_again() {
    let (mut fs, mut harness) = (VirtualFs::default(), Harness::new(true));
    fs.write_lines("app.log", 20);
    harness.scan(&mut fs);
    harness.read(&mut fs, 1000);
    // Records 0..5 confirmed; 5 still being retried; 6..20 confirmed.
    harness.deliver(|i| i != 5);
    harness.save();
    assert_eq!(harness.store.values().next().map(|row| row.offset), Some(45), "stops at the retried record");
    harness.crash_and_restart(&mut fs);
    harness.drain(&mut fs);
    // The 14 records confirmed after the one being retried are read again (they are above the checkpoint).
    assert_all_once_but(&harness, &fs, 14);
}

fn assert_all_once_but(harness: &Harness, fs: &VirtualFs, duplicates: u64) {
    assert_eq!(harness.delivered.len() as u64, fs.written());
    assert_eq!(harness.deliveries, fs.written() + duplicates);
}

#[derive(Debug, Clone)]
enum Op {
    Write(u64),
    WriteRotated(u64),
    Rename,
    CopyTruncate,
    CompressDelete,
    Copy,
    Scan,
    Read(usize),
    Deliver(u64),
    Poll(u64),
    Save,
    Crash,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (1u64..40).prop_map(Op::Write),
        1 => (1u64..5).prop_map(Op::WriteRotated),
        1 => Just(Op::Rename),
        1 => Just(Op::CopyTruncate),
        1 => Just(Op::CompressDelete),
        1 => Just(Op::Copy),
        3 => Just(Op::Scan),
        3 => (1usize..200).prop_map(Op::Read),
        3 => any::<u64>().prop_map(Op::Deliver),
        2 => (0u64..4000).prop_map(Op::Poll),
        2 => Just(Op::Save),
        1 => Just(Op::Crash),
    ]
}

/// Runs `ops`; checks after every step that no byte below a saved checkpoint is unsent, and at the end
/// that every line was delivered (except lines destroyed while nothing held them: created and deleted
/// between two scans, or deleted after a crash).
fn run(ops: &[Op], exact: bool) -> Result<(), TestCaseError> {
    let (mut fs, mut harness) = (VirtualFs::default(), Harness::new(exact));
    for op in ops {
        let delivered = harness.delivered.clone();
        if exact && matches!(op, Op::Rename | Op::CompressDelete) {
            // A file renamed out of the pattern before any scan saw it is never read (as with the Kinesis
            // Agent); the shell's change notifications make that window small. The test models them.
            harness.scan(&mut fs);
        }
        match op {
            Op::Write(n) => drop(fs.write_lines("app.log", *n)),
            // The writer still holding a file just rotated: while it writes, the file is not quiet, so it is
            // not closed (`close_inactive`). Writes after the close are not read: not modelled.
            Op::WriteRotated(n) if fs.exists("app.log.1") && (!exact || harness.holds(&fs, "app.log.1")) => {
                fs.write_lines("app.log.1", *n);
            }
            Op::WriteRotated(_) => {}
            Op::Rename => {
                fs.unlink("app.log.2", &delivered);
                fs.rename("app.log.1", "app.log.2", &delivered);
                fs.rename("app.log", "app.log.1", &delivered);
            }
            Op::CopyTruncate if !exact => {
                fs.copy("app.log", "app.log.1", &delivered);
                fs.truncate("app.log", &delivered);
            }
            Op::CompressDelete => {
                // The archive is skipped by name (see the unit test); here it would only hide losses.
                fs.rename("app.log", "app.log.1", &delivered);
                fs.unlink("app.log.1", &delivered);
            }
            Op::Copy if !exact => fs.copy("app.log", "app.log.copy", &delivered),
            Op::CopyTruncate | Op::Copy => {}
            Op::Scan => harness.scan(&mut fs),
            Op::Read(chunk) => harness.read(&mut fs, *chunk),
            Op::Deliver(bits) => harness.deliver(|i| bits >> (i % 64) & 1 == 1),
            Op::Poll(ms) => harness.poll(&mut fs, Duration::from_millis(*ms)),
            Op::Save => harness.save(),
            Op::Crash => harness.crash_and_restart(&mut fs),
        }
        harness.check_checkpoints(&fs).map_err(TestCaseError::fail)?;
    }
    harness.drain(&mut fs);
    harness.check_checkpoints(&fs).map_err(TestCaseError::fail)?;
    let missing: Vec<u64> = (0..fs.written())
        .filter(|line| !harness.delivered.contains(line) && !fs.lost_without_blame.contains(line))
        .collect();
    prop_assert!(missing.is_empty(), "lines never delivered: {:?}", missing);
    let crashed = ops.iter().any(|op| matches!(op, Op::Crash));
    let copied = !exact && ops.iter().any(|op| matches!(op, Op::Copy));
    if !crashed && !copied {
        prop_assert_eq!(
            harness.deliveries,
            harness.delivered.len() as u64,
            "duplicates without a crash or copy"
        );
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    /// A crash may come at any step (Crash ops anywhere in the sequence).
    #[test]
    fn no_byte_below_a_saved_checkpoint_is_unsent_and_every_line_arrives(
        ops in prop::collection::vec(op(), 1..60),
        exact in any::<bool>(),
    ) {
        run(&ops, exact)?;
    }
}

#[test]
fn a_rotated_file_is_given_up_only_when_nothing_could_be_read_for_rotate_wait() {
    let (mut fs, mut harness) = (VirtualFs::default(), Harness::new(true));
    fs.write_lines("app.log", 10);
    harness.scan(&mut fs); // opened; reading stalls (a full budget)
    fs.rename("app.log", "app.log.1", NONE);
    harness.scan(&mut fs);
    harness.poll(&mut fs, Duration::from_secs(599));
    assert_eq!(harness.tailer.readable().count(), 1, "still open before rotate_wait");
    harness.poll(&mut fs, Duration::from_secs(1));
    assert!(notices(&mut harness).iter().any(|n| matches!(n, Notice::GaveUp { .. })));
    assert_eq!(harness.tailer.readable().count(), 0, "closed");
}

#[test]
fn a_copytruncate_while_stopped_resumes_in_the_copy() {
    let (mut fs, mut harness) = (VirtualFs::default(), Harness::new(false));
    fs.write_lines("app.log", 200); // over 1 KiB: a full fingerprint
    step(&mut harness, &mut fs);
    fs.write_lines("app.log", 5);
    // Stopped (kill -9) while the file was copied and truncated, and new lines written.
    harness.crash_and_restart_after(&mut fs, |fs| {
        fs.copy("app.log", "app.log.1", NONE);
        fs.truncate("app.log", NONE);
        fs.write_lines("app.log", 3);
    });
    harness.drain(&mut fs);
    assert_all_once(&harness, &fs);
}

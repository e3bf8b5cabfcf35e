//! Reviewed snapshots of what callers see, kept in `tests/snapshots/` by
//! `insta`. A test whose output changed fails and leaves `NAME.snap.new`
//! beside the snapshot; review it with `cargo insta review`, or rerun with
//! `INSTA_UPDATE=always` and read the diff.

use crate::support::harness::workspace_root;

pub fn assert_snapshot(name: &str, actual: &str) {
    let mut settings = insta::Settings::clone_current();
    settings.set_snapshot_path(workspace_root().join("tests/snapshots"));
    settings.set_prepend_module_to_snapshot(false);
    settings.set_omit_expression(true);
    settings.bind(|| insta::assert_snapshot!(name, actual));
}

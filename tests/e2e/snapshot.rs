//! Reviewed snapshots of error details: a test renders what it saw and
//! compares it with `tests/snapshots/NAME`. `EXTAPPS_UPDATE_SNAPSHOTS=1`
//! rewrites the file instead, for review in the diff.

use crate::harness::workspace_root;

pub fn assert_snapshot(name: &str, actual: &str) {
    let path = workspace_root().join("tests/snapshots").join(name);
    if std::env::var_os("EXTAPPS_UPDATE_SNAPSHOTS").is_some() {
        std::fs::write(&path, actual).unwrap();
        return;
    }
    let expected = std::fs::read_to_string(&path).unwrap_or_else(|_| {
        panic!(
            "missing snapshot {}: run with EXTAPPS_UPDATE_SNAPSHOTS=1 and review it",
            path.display()
        )
    });
    assert!(
        expected == actual,
        "snapshot {} differs; rerun with EXTAPPS_UPDATE_SNAPSHOTS=1 and review the diff.\n--- expected\n{expected}\n--- actual\n{actual}",
        path.display()
    );
}

//! `cityos workflow-table` and the help and argument errors of every command.

use crate::support::{cityos, stderr, stdout};

#[test]
fn workflow_table_and_help() {
    let o = cityos(&["workflow-table"]);
    assert!(
        stdout(&o).contains("| `dispatch` | filed, returned | dispatched |"),
        "{}",
        stdout(&o)
    );
    let o = cityos(&["--help"]);
    for cmd in ["demo", "simulate", "bench", "territory", "check"] {
        assert!(stdout(&o).contains(cmd), "{cmd}");
    }
    let o = cityos(&["simulate", "--seed", "banana"]);
    assert!(!o.status.success());
    assert!(
        stderr(&o).contains("invalid value 'banana'"),
        "{}",
        stderr(&o)
    );
}

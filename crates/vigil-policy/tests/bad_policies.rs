//! Invalid policies: each problem is reported with its exact path and message.

use vigil_policy::check_str;

/// `PATH: message` lines (with line/column for YAML errors) of every problem.
fn problems(yaml: &str) -> Vec<String> {
    match check_str(yaml) {
        Ok(policies) => panic!("accepted: {policies:?}"),
        Err(errors) => errors.iter().map(ToString::to_string).collect(),
    }
}

const HEADER: &str = "apiVersion: cilium.io/v1alpha1
kind: TracingPolicy
metadata:
  name: test
spec:
";

/// A policy whose spec is `spec` (indented by two spaces).
fn policy(spec: &str) -> String {
    format!("{HEADER}{spec}")
}

#[test]
fn malformed_yaml_reports_line_and_column() {
    let found = problems(&policy(
        "  kprobes:\n  - call: \"fd_install\n    syscall: false\n",
    ));
    assert_eq!(
        found,
        vec!["spec.kprobes[0]: unclosed quote (line 7, column 11)"]
    );
    let found = problems("apiVersion: cilium.io/v1alpha1\nkind: [TracingPolicy\n");
    assert_eq!(found.len(), 1);
    assert!(found[0].starts_with("kind: "), "{found:?}");
}

#[test]
fn unknown_field() {
    let found = problems(&policy(
        "  kprobes:\n  - call: fd_install\n    syscall: false\n    selectors:\n    - matchArg:\n      - index: 0\n",
    ));
    assert_eq!(
        found,
        vec![
            "spec.kprobes[0].selectors[0].matchArg: unknown field \"matchArg\"; allowed fields: \
             label, macros, matchPIDs, matchArgs, matchData, matchReturnArgs, matchBinaries, \
             matchParentBinaries, matchNamespaces, matchNamespaceChanges, matchCapabilities, \
             matchCapabilityChanges, matchWorkloads, matchActions, matchReturnActions \
             (line 10, column 7)"
        ]
    );
}

#[test]
fn unknown_top_level_field() {
    let found = problems(&format!("{HEADER}  kprobes: []\nstatus: {{}}\n"));
    assert_eq!(found.len(), 1);
    assert!(
        found[0].starts_with(
            "status: unknown field \"status\"; allowed fields: apiVersion, kind, metadata, spec"
        ),
        "{found:?}"
    );
}

#[test]
fn unknown_operator() {
    let found = problems(&policy(
        "  kprobes:\n  - call: fd_install\n    syscall: false\n    args:\n    - index: 0\n      type: int\n    selectors:\n    - matchArgs:\n      - index: 0\n        operator: Equals\n        values: [\"1\"]\n",
    ));
    assert_eq!(found.len(), 1);
    assert!(
        found[0].starts_with(
            "spec.kprobes[0].selectors[0].matchArgs[0].operator: unknown value \"Equals\"; allowed: Equal, NotEqual, Prefix,"
        ),
        "{found:?}"
    );
    assert!(found[0].ends_with("(line 15, column 19)"), "{found:?}");
}

#[test]
fn unknown_action_lists_allowed_actions() {
    let found = problems(&policy(
        "  kprobes:\n  - call: fd_install\n    syscall: false\n    selectors:\n    - matchActions:\n      - action: FollowFD\n",
    ));
    assert_eq!(
        found,
        vec![
            "spec.kprobes[0].selectors[0].matchActions[0].action: unknown value \"FollowFD\"; \
             allowed: Post, Sigkill, Override, GetUrl, DnsLookup, NoPost, Signal, TrackSock, \
             UntrackSock, NotifyEnforcer, CleanupEnforcerNotification, Set (line 11, column 17)"
        ]
    );
}

#[test]
fn missing_required_field() {
    let found = problems(&policy("  tracepoints:\n  - subsystem: raw_syscalls\n"));
    assert_eq!(
        found,
        vec!["spec.tracepoints[0].event: required field is missing (line 7, column 5)"]
    );
}

#[test]
fn arg_index_out_of_range() {
    let found = problems(&policy(
        "  kprobes:\n  - call: fd_install\n    syscall: false\n    args:\n    - index: 0\n      type: int\n    - index: 1\n      type: file\n    selectors:\n    - matchArgs:\n      - index: 2\n        operator: Prefix\n        values: [\"/etc\"]\n      - args: [3]\n        operator: Prefix\n        values: [\"/etc\"]\n",
    ));
    assert_eq!(
        found,
        vec![
            "spec.kprobes[0].selectors[0].matchArgs[0].index: index 2 does not refer to a \
             declared arg; indexes declared in args: 0, 1",
            "spec.kprobes[0].selectors[0].matchArgs[1].args[0]: 3 is not a position in the \
             hook's args list (valid: 0 to 1)",
        ]
    );
}

#[test]
fn too_many_selectors() {
    let selector = "    - matchActions:\n      - action: Post\n";
    let found = problems(&policy(&format!(
        "  kprobes:\n  - call: fd_install\n    syscall: false\n    selectors:\n{}",
        selector.repeat(6)
    )));
    assert_eq!(
        found,
        vec!["spec.kprobes[0].selectors: has 6 entries; at most 5 allowed"]
    );
}

#[test]
fn too_many_values() {
    let found = problems(&policy(
        "  kprobes:\n  - call: fd_install\n    syscall: false\n    args:\n    - index: 0\n      type: int\n    selectors:\n    - matchArgs:\n      - index: 0\n        operator: Equal\n        values: [\"1\", \"2\", \"3\", \"4\", \"5\"]\n      matchPIDs:\n      - operator: In\n        values: [1, 2, 3, 4, 5]\n",
    ));
    assert_eq!(
        found,
        vec![
            "spec.kprobes[0].selectors[0].matchArgs[0].values: has 5 values; at most 4 allowed \
             for operator Equal on integer args (use InMap/NotInMap for larger sets)",
            "spec.kprobes[0].selectors[0].matchPIDs[0].values: has 5 entries; at most 4 allowed",
        ]
    );
}

#[test]
fn missing_return_arg() {
    let found = problems(&policy(
        "  kprobes:\n  - call: fd_install\n    syscall: false\n    return: true\n",
    ));
    assert_eq!(
        found,
        vec!["spec.kprobes[0].returnArg: required when return is true"]
    );
}

#[test]
fn override_without_arg_error() {
    let found = problems(&policy(
        "  kprobes:\n  - call: security_inode_mkdir\n    syscall: false\n    selectors:\n    - matchActions:\n      - action: Override\n      - action: Signal\n",
    ));
    assert_eq!(
        found,
        vec![
            "spec.kprobes[0].selectors[0].matchActions[0].argError: required by action Override",
            "spec.kprobes[0].selectors[0].matchActions[1].argSig: required by action Signal",
        ]
    );
}

#[test]
fn bad_rate_limit() {
    let found = problems(&policy(
        "  kprobes:\n  - call: cap_capable\n    syscall: false\n    selectors:\n    - matchActions:\n      - action: Post\n        rateLimit: \"1d\"\n      - action: Sigkill\n        rateLimit: \"1m\"\n",
    ));
    assert_eq!(
        found,
        vec![
            "spec.kprobes[0].selectors[0].matchActions[0].rateLimit: invalid rate limit \"1d\"; \
             expected a whole number of seconds, optionally followed by s, m or h \
             (e.g. \"30\", \"30s\", \"5m\", \"1h\")",
            "spec.kprobes[0].selectors[0].matchActions[1].rateLimit: only valid with action \
             Post, not Sigkill",
        ]
    );
}

#[test]
fn operator_must_suit_the_arg_type() {
    let found = problems(&policy(
        "  kprobes:\n  - call: fd_install\n    syscall: false\n    args:\n    - index: 0\n      type: int\n    selectors:\n    - matchArgs:\n      - index: 0\n        operator: SPort\n        values: [\"80\"]\n",
    ));
    assert_eq!(
        found,
        vec![
            "spec.kprobes[0].selectors[0].matchArgs[0].operator: operator SPort does not apply \
             to arg type int; it applies to: sock, socket, skb; sockaddr"
        ]
    );
}

#[test]
fn all_errors_are_collected() {
    let found = problems(
        "apiVersion: cilium.io/v1alpha1
kind: TracingPolicyNamespaced
metadata:
  name: Bad_Name
spec:
  hostSelector: {}
  options:
  - name: policy-mode
    value: audit
  enforcers:
  - calls: [\"list:missing\"]
  lsmhooks:
  - hook: security_file_open
    message: \"\"
    selectors:
    - macros: [nope]
      matchBinaries:
      - operator: Prefix
        followChildren: true
        values: [/usr]
      - operator: In
        values: [/bin/sh]
",
    );
    assert_eq!(
        found,
        vec![
            "metadata.name: \"Bad_Name\" is not a valid name; use at most 253 lower-case letters, \
             digits, '-' or '.', starting and ending with a letter or digit",
            "spec.hostSelector: TracingPolicyNamespaced must not set hostSelector",
            "spec.enforcers[0].calls[0]: \"list:missing\" refers to an undefined list; no lists \
             are defined in spec.lists",
            "spec.options[0].value: unknown value \"audit\"; allowed: enforce, monitor",
            "spec.lsmhooks[0].hook: LSM hook names omit the security_ prefix; write \"file_open\" \
             instead of \"security_file_open\"",
            "spec.lsmhooks[0].selectors[0].macros[0]: macro \"nope\" is not defined in \
             spec.selectorsMacros; defined: none",
            "spec.lsmhooks[0].selectors[0].matchBinaries: has 2 entries; at most 1 allowed",
            "spec.lsmhooks[0].selectors[0].matchBinaries[0].followChildren: only valid with \
             operator In or NotIn, not Prefix",
        ]
    );
}

#[test]
fn macros_merge_and_conflict() {
    let found = problems(&policy(
        "  selectorsMacros:
    kill:
      matchActions:
      - action: Override
  kprobes:
  - call: sys_mkdir
    selectors:
    - macros: [kill]
    - macros: [kill]
      matchActions:
      - action: Post
",
    ));
    assert_eq!(
        found,
        vec![
            "spec.selectorsMacros.kill.matchActions[0].argError: required by action Override",
            "spec.kprobes[0].selectors[1].macros[0]: macro \"kill\" sets matchActions, which the \
             selector already sets",
        ]
    );
}

#[test]
fn multiple_documents_are_each_a_policy() {
    let first = policy("  kprobes:\n  - call: fd_install\n    syscall: false\n");
    let second = policy("  kprobes:\n  - call: fd_install\n    return: true\n");
    let text = format!("---\n{first}---\n{second}");
    let found = problems(&text);
    assert_eq!(
        found,
        vec!["documents[1].spec.kprobes[0].returnArg: required when return is true"]
    );
    let both = format!("{first}---\n{first}");
    assert_eq!(check_str(&both).map(|policies| policies.len()), Ok(2));
}

#[test]
fn yaml_errors_in_later_documents_count_lines_from_the_file_start() {
    let first = policy("  kprobes:\n  - call: fd_install\n    syscall: false\n");
    let text = format!("{first}---\n{HEADER}  kprobes:\n  - cal: fd_install\n");
    let found = problems(&text);
    assert_eq!(found.len(), 1);
    assert!(
        found[0].starts_with("documents[1].spec.kprobes[0].cal: unknown field \"cal\"")
            && found[0].ends_with("(line 16, column 5)"),
        "{found:?}"
    );
}

#[test]
fn empty_file_is_refused() {
    assert_eq!(
        problems("# nothing here\n"),
        vec!["<file>: no policy document found"]
    );
}

#[test]
fn kprobe_call_from_an_undefined_list() {
    let found = problems(&policy(
        "  lists:\n  - name: dups\n    type: syscalls\n    values: [sys_dup]\n  kprobes:\n  - call: list:nope\n    syscall: true\n",
    ));
    assert_eq!(
        found,
        vec![
            "spec.kprobes[0].call: \"list:nope\" refers to an undefined list; defined lists: dups"
        ]
    );
}

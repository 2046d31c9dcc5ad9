//! Tetragon's own example policies must load unchanged (or be refused precisely).

use std::path::PathBuf;

use vigil_policy::{check_file, check_str, ArgType, CapabilitySet, PolicyError};

/// Directory of Tetragon's example policies: `VIGIL_TETRAGON_POLICIES`, or the
/// shared fixtures next to the repository.
fn policies_dir() -> PathBuf {
    std::env::var_os("VIGIL_TETRAGON_POLICIES")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/tetragon-policies")
        })
}

/// Contains `${PODCIDR}` / `${SERVICECIDR}` placeholders meant for envsubst.
const TEMPLATE: &str = "network-egress-cluster-enforce.yaml";

fn policy_files() -> Vec<PathBuf> {
    let dir = policies_dir();
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|error| panic!("cannot list {}: {error}", dir.display()))
        .map(|entry| entry.expect("directory entry").path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "yaml"))
        .collect();
    files.sort();
    files
}

#[test]
fn every_example_policy_is_accepted() {
    let files = policy_files();
    assert!(
        files.len() >= 12,
        "expected Tetragon's examples, found {files:?}"
    );
    for file in files.iter().filter(|file| !file.ends_with(TEMPLATE)) {
        let policies = check_file(file).unwrap_or_else(|errors| panic!("{errors}"));
        assert_eq!(policies.len(), 1, "{}", file.display());
    }
}

#[test]
fn unsubstituted_cidr_placeholders_are_refused_precisely() {
    let errors = check_file(policies_dir().join(TEMPLATE)).expect_err("placeholders are not CIDRs");
    let values = "spec.kprobes[0].selectors[0].matchArgs[0].values";
    assert_eq!(
        errors.errors,
        vec![
            PolicyError::new(
                format!("{values}[1]"),
                "\"${PODCIDR}\" is not an IP address or CIDR (e.g. 10.0.0.0/8, fd00::/8)"
            ),
            PolicyError::new(
                format!("{values}[2]"),
                "\"${SERVICECIDR}\" is not an IP address or CIDR (e.g. 10.0.0.0/8, fd00::/8)"
            ),
        ]
    );
    let first_line = errors.to_string().lines().next().map(str::to_owned);
    assert_eq!(
        first_line.as_deref(),
        Some(
            format!(
                "{}: {values}[1]: \"${{PODCIDR}}\" is not an IP address or CIDR (e.g. 10.0.0.0/8, fd00::/8)",
                policies_dir().join(TEMPLATE).display()
            )
            .as_str()
        )
    );
}

#[test]
fn substituted_template_is_accepted() {
    let text = std::fs::read_to_string(policies_dir().join(TEMPLATE)).expect("template");
    let text = text
        .replace("${PODCIDR}", "10.244.0.0/16")
        .replace("${SERVICECIDR}", "10.96.0.0/12");
    let policies = check_str(&text).unwrap_or_else(|errors| panic!("{errors:?}"));
    assert!(policies[0].is_namespaced());
}

#[test]
fn crd_defaults_are_applied() {
    let policies = check_str(
        r#"
apiVersion: cilium.io/v1alpha1
kind: TracingPolicy
metadata:
  name: defaults
spec:
  kprobes:
  - call: sys_openat
    args:
    - index: 1
    selectors:
    - matchCapabilities:
      - operator: In
        values: [CAP_SYS_ADMIN]
"#,
    )
    .unwrap_or_else(|errors| panic!("{errors:?}"));
    let kprobe = &policies[0].spec.kprobes[0];
    assert!(kprobe.syscall, "syscall defaults to true");
    assert!(!kprobe.r#return);
    assert_eq!(kprobe.args[0].arg_type, ArgType::Auto);
    let capabilities = &kprobe.selectors[0].match_capabilities[0];
    assert_eq!(capabilities.set, CapabilitySet::Effective);
    assert_eq!(capabilities.values[0].number(), 21);
}

#[test]
fn typed_fields_of_examples() {
    let policies = check_file(policies_dir().join("kill-syscalls-enforcer.yaml"))
        .unwrap_or_else(|errors| panic!("{errors}"));
    let tracepoint = &policies[0].spec.tracepoints[0];
    assert_eq!(tracepoint.args[0].arg_type, ArgType::Syscall64);
    let action = &tracepoint.selectors[0].match_actions[0];
    assert_eq!((action.arg_error, action.arg_sig), (Some(-1), Some(9)));
}

#[test]
fn report_over_several_files() {
    let dir = policies_dir();
    let files = [
        dir.join("uprobe.yaml"),
        dir.join(TEMPLATE),
        dir.join("missing.yaml"),
    ];
    let report = vigil_policy::check_files(&files);
    assert!(!report.is_ok());
    assert_eq!(report.error_count(), 3);
    let text = report.to_string();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 4, "{text}");
    assert_eq!(
        lines[0],
        format!("{}: ok: uprobe (TracingPolicy)", files[0].display())
    );
    assert!(lines[3].starts_with(&format!("{}: <file>: cannot read: ", files[2].display())));
    assert!(vigil_policy::check_files(&files[..1]).is_ok());
}

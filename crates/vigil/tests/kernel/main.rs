//! Kernel integration tests: the real agent on the real kernel, real
//! programs, and assertions on the events the agent exported. A small harness
//! of our own (not libtest) so that a test can report itself skipped with a
//! reason, and so that this binary doubles as the tester programs it runs.
mod api;
mod buffers;
mod compat;
mod defaults;
mod fanotify;
mod function;
mod harness;
mod kernel_args;
mod lists;
mod metrics;
mod multi;
mod network;
mod policy;
mod process;
mod ring;
mod selectors;
mod stacks;
mod syscall;
mod tester;
mod tracepoint;
mod uprobe;
mod usdt;
mod workload;

use std::{panic, process::ExitCode, time::Instant};

use harness::TestResult;

type TestFn = fn() -> TestResult;

const TESTS: &[(&str, TestFn)] = &[
    (
        "fanotify::override_blocks_equal_and_prefix",
        fanotify::override_blocks_equal_and_prefix,
    ),
    (
        "fanotify::monitor_mode_allows_and_counts",
        fanotify::monitor_mode_allows_and_counts,
    ),
    (
        "fanotify::match_binaries_not_in_lets_allowed_binary_read",
        fanotify::match_binaries_not_in_lets_allowed_binary_read,
    ),
    (
        "fanotify::sigkill_denies_and_kills",
        fanotify::sigkill_denies_and_kills,
    ),
    (
        "fanotify::exec_override_blocks_execution",
        fanotify::exec_override_blocks_execution,
    ),
    (
        "fanotify::delete_lifts_the_block",
        fanotify::delete_lifts_the_block,
    ),
    (
        "fanotify::unmarkable_selector_is_refused",
        fanotify::unmarkable_selector_is_refused,
    ),
    (
        "process::shell_pipeline_three_generations",
        process::shell_pipeline_three_generations,
    ),
    (
        "process::exit_status_and_signals",
        process::exit_status_and_signals,
    ),
    (
        "process::multithreaded_process_exits_once",
        process::multithreaded_process_exits_once,
    ),
    (
        "process::setuid_binary_shows_privilege_change",
        process::setuid_binary_shows_privilege_change,
    ),
    (
        "process::new_namespaces_differ_from_parent",
        process::new_namespaces_differ_from_parent,
    ),
    (
        "process::memfd_exec_is_flagged",
        process::memfd_exec_is_flagged,
    ),
    (
        "process::process_started_before_agent_is_parent",
        process::process_started_before_agent_is_parent,
    ),
    (
        "process::exec_storm_loses_nothing",
        process::exec_storm_loses_nothing,
    ),
    (
        "process::agent_leaves_nothing_loaded",
        process::agent_leaves_nothing_loaded,
    ),
    (
        "policy::openat_prefix_posts_matching_paths",
        policy::openat_prefix_posts_matching_paths,
    ),
    (
        "policy::match_binaries_restricts_to_binary",
        policy::match_binaries_restricts_to_binary,
    ),
    (
        "policy::match_binaries_follow_children",
        policy::match_binaries_follow_children,
    ),
    (
        "policy::sigkill_kills_the_opener",
        policy::sigkill_kills_the_opener,
    ),
    (
        "policy::monitor_mode_does_not_kill",
        policy::monitor_mode_does_not_kill,
    ),
    (
        "policy::bad_policy_refused_good_policy_kept",
        policy::bad_policy_refused_good_policy_kept,
    ),
    (
        "buffers::read_return_copy_and_iovecs",
        buffers::read_return_copy_and_iovecs,
    ),
    (
        "stacks::kernel_and_user_stack_of_a_system_call",
        stacks::kernel_and_user_stack_of_a_system_call,
    ),
    (
        "stacks::kernel_and_user_stack_of_a_tracepoint",
        stacks::kernel_and_user_stack_of_a_tracepoint,
    ),
    (
        "stacks::kernel_and_user_stack_of_a_raw_tracepoint",
        stacks::kernel_and_user_stack_of_a_raw_tracepoint,
    ),
    (
        "stacks::user_stack_of_a_uprobe",
        stacks::user_stack_of_a_uprobe,
    ),
    (
        "stacks::kernel_stack_of_a_kernel_function",
        stacks::kernel_stack_of_a_kernel_function,
    ),
    (
        "lists::kprobe_on_a_list_of_system_calls",
        lists::kprobe_on_a_list_of_system_calls,
    ),
    (
        "lists::unknown_list_refused_with_field_path",
        lists::unknown_list_refused_with_field_path,
    ),
    (
        "policy::write_fd_buffer_and_return_value",
        policy::write_fd_buffer_and_return_value,
    ),
    (
        "policy::non_syscall_kprobe_refused_with_reason",
        policy::non_syscall_kprobe_refused_with_reason,
    ),
    (
        "policy::file_open_hook_posts_file_path",
        policy::file_open_hook_posts_file_path,
    ),
    (
        "policy::lsm_override_blocks_open",
        policy::lsm_override_blocks_open,
    ),
    (
        "workload::namespaced_policy_sees_only_its_namespace",
        workload::namespaced_policy_sees_only_its_namespace,
    ),
    (
        "workload::tetragon_file_monitoring_enforce_in_default_pods",
        workload::tetragon_file_monitoring_enforce_in_default_pods,
    ),
    (
        "workload::tetragon_network_egress_enforce_in_default_pods",
        workload::tetragon_network_egress_enforce_in_default_pods,
    ),
    (
        "compat::tetragon_examples_served_or_refused_precisely",
        compat::tetragon_examples_served_or_refused_precisely,
    ),
    (
        "compat::tetragon_lsm_file_open_reports_cat",
        compat::tetragon_lsm_file_open_reports_cat,
    ),
    (
        "compat::tetragon_fd_install_caps_sees_namespaced_root",
        compat::tetragon_fd_install_caps_sees_namespaced_root,
    ),
    (
        "compat::tetragon_lsm_bprm_check_blocks_and_hashes",
        compat::tetragon_lsm_bprm_check_blocks_and_hashes,
    ),
    (
        "compat::tetragon_creds_capability_usage_in_pid_namespace",
        compat::tetragon_creds_capability_usage_in_pid_namespace,
    ),
    (
        "selectors::namespaces_tell_host_from_new_mount_ns",
        selectors::namespaces_tell_host_from_new_mount_ns,
    ),
    (
        "selectors::capabilities_select_effective_set",
        selectors::capabilities_select_effective_set,
    ),
    (
        "selectors::rate_limit_posts_once_per_key_and_interval",
        selectors::rate_limit_posts_once_per_key_and_interval,
    ),
    (
        "selectors::parent_binaries_select_the_parent",
        selectors::parent_binaries_select_the_parent,
    ),
    (
        "selectors::namespace_changes_after_exec",
        selectors::namespace_changes_after_exec,
    ),
    (
        "selectors::capability_changes_after_exec",
        selectors::capability_changes_after_exec,
    ),
    (
        "selectors::pids_follow_forks_and_namespace_pids",
        selectors::pids_follow_forks_and_namespace_pids,
    ),
    (
        "kernel_args::kernel_objects_as_arguments",
        kernel_args::kernel_objects_as_arguments,
    ),
    (
        "kernel_args::bpf_perf_and_skb_objects_as_arguments",
        kernel_args::bpf_perf_and_skb_objects_as_arguments,
    ),
    (
        "kernel_args::skb_on_a_raw_tracepoint",
        kernel_args::skb_on_a_raw_tracepoint,
    ),
    (
        "ring::records_crossing_the_ring_end_arrive_whole",
        ring::records_crossing_the_ring_end_arrive_whole,
    ),
    (
        "metrics::bpf_map_memory_and_program_runs_exported",
        metrics::bpf_map_memory_and_program_runs_exported,
    ),
    (
        "uprobe::args_and_return_value_with_selector",
        uprobe::args_and_return_value_with_selector,
    ),
    (
        "uprobe::string_return_filtered_by_match_return_args",
        uprobe::string_return_filtered_by_match_return_args,
    ),
    (
        "uprobe::sigkill_before_the_function_runs",
        uprobe::sigkill_before_the_function_runs,
    ),
    (
        "uprobe::tetragon_uprobe_policy_on_bash",
        uprobe::tetragon_uprobe_policy_on_bash,
    ),
    (
        "uprobe::tetragon_readline_return_prefix",
        uprobe::tetragon_readline_return_prefix,
    ),
    (
        "tracepoint::classic_fields_by_format_index",
        tracepoint::classic_fields_by_format_index,
    ),
    (
        "tracepoint::raw_tracepoint_args",
        tracepoint::raw_tracepoint_args,
    ),
    (
        "tracepoint::notify_enforcer_kills_at_sys_enter",
        tracepoint::notify_enforcer_kills_at_sys_enter,
    ),
    (
        "tracepoint::tetragon_kill_syscalls_enforcer",
        tracepoint::tetragon_kill_syscalls_enforcer,
    ),
    (
        "network::connect_reports_sockaddr_and_addr_selectors",
        network::connect_reports_sockaddr_and_addr_selectors,
    ),
    (
        "network::override_blocks_connect_before_it_leaves",
        network::override_blocks_connect_before_it_leaves,
    ),
    (
        "network::security_socket_connect_override_blocks",
        network::security_socket_connect_override_blocks,
    ),
    (
        "network::monitor_mode_counts_and_lets_connect",
        network::monitor_mode_counts_and_lets_connect,
    ),
    (
        "network::sigkill_blocks_and_kills_the_connecting_process",
        network::sigkill_blocks_and_kills_the_connecting_process,
    ),
    (
        "network::cgroup_links_go_with_the_agent",
        network::cgroup_links_go_with_the_agent,
    ),
    (
        "network::udp_sendto_override_blocks_before_the_datagram_leaves",
        network::udp_sendto_override_blocks_before_the_datagram_leaves,
    ),
    (
        "network::udp_sendto_monitor_mode_lets_through",
        network::udp_sendto_monitor_mode_lets_through,
    ),
    (
        "network::bind_override_blocks_and_links_go_with_the_policy",
        network::bind_override_blocks_and_links_go_with_the_policy,
    ),
    ("usdt::usdt_args_and_selector", usdt::usdt_args_and_selector),
    (
        "usdt::usdt_sigkill_before_the_code_after_the_probe",
        usdt::usdt_sigkill_before_the_code_after_the_probe,
    ),
    (
        "network::tcp_connect_reports_sock",
        network::tcp_connect_reports_sock,
    ),
    (
        "network::tetragon_tcp_connect_policies",
        network::tetragon_tcp_connect_policies,
    ),
    (
        "network::track_sock_names_the_owner",
        network::track_sock_names_the_owner,
    ),
    (
        "api::policy_lifecycle_over_grpc",
        api::policy_lifecycle_over_grpc,
    ),
    (
        "api::every_hook_kind_comes_and_goes_at_runtime",
        api::every_hook_kind_comes_and_goes_at_runtime,
    ),
    (
        "api::bad_policy_over_grpc_keeps_agent",
        api::bad_policy_over_grpc_keeps_agent,
    ),
    (
        "api::slow_subscriber_loses_not_the_file",
        api::slow_subscriber_loses_not_the_file,
    ),
    (
        "api::api_policies_survive_a_restart",
        api::api_policies_survive_a_restart,
    ),
    (
        "api::tcp_api_serves_root_only",
        api::tcp_api_serves_root_only,
    ),
    (
        "api::mtls_api_serves_certified_clients",
        api::mtls_api_serves_certified_clients,
    ),
    (
        "api::tls_without_client_ca_serves_root_only",
        api::tls_without_client_ca_serves_root_only,
    ),
    (
        "function::return_value_by_fexit_or_kretprobe",
        function::return_value_by_fexit_or_kretprobe,
    ),
    (
        "function::override_security_inode_mkdir",
        function::override_security_inode_mkdir,
    ),
    (
        "syscall::return_args_by_fexit_or_tracepoint",
        syscall::return_args_by_fexit_or_tracepoint,
    ),
    (
        "syscall::override_mkdirat_blocks_before_the_call",
        syscall::override_mkdirat_blocks_before_the_call,
    ),
    (
        "defaults::default_policies_load_and_post",
        defaults::default_policies_load_and_post,
    ),
    (
        "multi::kprobe_multi_serves_a_list_of_functions",
        multi::kprobe_multi_serves_a_list_of_functions,
    ),
    (
        "multi::disable_kprobe_multi_keeps_one_program_per_function",
        multi::disable_kprobe_multi_keeps_one_program_per_function,
    ),
    (
        "multi::return_values_by_kretprobe_multi",
        multi::return_values_by_kretprobe_multi,
    ),
    (
        "multi::load_time_of_twenty_functions",
        multi::load_time_of_twenty_functions,
    ),
    (
        "multi::fentries_by_trampolines_only",
        multi::fentries_by_trampolines_only,
    ),
];

fn main() -> ExitCode {
    if let Ok(mode) = std::env::var(tester::MODE_VAR) {
        return tester::run(&mode);
    }
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .collect();
    let (mut passed, mut failed, mut skipped) = (0, 0, 0);
    for (name, test) in TESTS {
        if !args.is_empty() && !args.iter().any(|f| name.contains(f.as_str())) {
            continue;
        }
        let start = Instant::now();
        match panic::catch_unwind(test) {
            Ok(Ok(())) => {
                passed += 1;
                println!("test {name} ... ok ({:.1?})", start.elapsed());
            }
            Ok(Err(harness::Skip(why))) => {
                skipped += 1;
                println!("test {name} ... skipped: {why}");
                println!("SKIP: {name}: {why}");
            }
            Err(_) => {
                failed += 1;
                println!("test {name} ... FAILED");
            }
        }
    }
    println!("kernel tests: {passed} passed, {failed} failed, {skipped} skipped");
    if failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

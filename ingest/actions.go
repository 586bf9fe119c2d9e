package ingest

import (
	"strconv"

	"github.com/capstan-io/capstan/schema"
)

// OtherAction is the action label of events whose action Capstan does not
// know. The event itself keeps its action verbatim.
const OtherAction = "other"

// knownActions are the actions current and older plugins send
// (PROTOCOL.md §3); only these get their own metric label.
var knownActions = func() map[string]struct{} {
	m := map[string]struct{}{}
	for _, a := range []string{
		"set", "set_fail", "set_next", "reset", "delete", "update_fail", "revert",
		"download_fail", "download_complete", "download_zip_start", "download_zip_complete",
		"download_manifest_start", "download_manifest_complete",
		"download_manifest_file_fail", "download_manifest_checksum_fail",
		"download_manifest_brotli_fail", "manifest_path_fail", "unzip_fail",
		"windows_path_fail", "canonical_path_fail", "directory_path_fail",
		"finish_download_fail", "low_mem_fail", "insufficient_disk_space",
		"decrypt_fail", "checksum_fail", "checksum_required", "session_key_required",
		"app_moved_to_foreground", "app_moved_to_background", "app_launch_start",
		"app_launch_ready", "app_launch_timeout", "app_crash", "app_crash_native",
		"app_anr", "app_memory_warning", "app_killed_low_memory",
		"app_killed_excessive_resource_usage", "app_initialization_failure",
		"webview_javascript_error", "webview_unhandled_rejection",
		"webview_resource_error", "webview_security_policy_violation",
		"webview_unclean_restart", "webview_render_process_gone",
		"webview_content_process_terminated", "webview_dom_content_loaded",
		"webview_page_loaded", "os_version_changed", "native_app_version_changed",
		"blocked_by_server_url", "rate_limit_reached",
	} {
		m[a] = struct{}{}
	}
	for p := 0; p <= 90; p += 10 {
		m["download_"+strconv.Itoa(p)] = struct{}{}
	}
	return m
}()

// actionLabel bounds the action label of capstan_stats_events_total.
func actionLabel(action string) string {
	if _, ok := knownActions[action]; ok {
		return action
	}
	return OtherAction
}

// Values of the scope label of capstan_stats_events_total: release-health
// alerts count scope="production" only, as reports and dashboards do.
const (
	ScopeProduction = "production" // production build, real device
	ScopeOther      = "other"      // dev build or emulator
	ScopeIgnored    = "ignored"    // kept, never a failure (legacy download_fail)
)

// scopeLabel is the scope of an event.
func scopeLabel(ev *schema.Event) string {
	switch {
	case ev.Ignored:
		return ScopeIgnored
	case ev.IsProd && !ev.IsEmulator:
		return ScopeProduction
	}
	return ScopeOther
}

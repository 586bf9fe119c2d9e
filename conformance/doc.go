// Package conformance runs the real capacitor-updater plugin against Capstan.
//
// The plugin's Android Java (pinned in plugin.version, fetched by
// .ci/install-deps) is compiled unmodified against Debian's OkHttp, Okio and
// org.json, with thin stand-ins for the Android and AndroidX classes it
// touches (android/). A driver (driver/) makes the calls CapacitorUpdaterPlugin
// makes on CapgoUpdater; the tests start a real `capstan serve` and assert on
// what the plugin did.
package conformance

// Package conformance runs the real capacitor-updater plugin against Capstan.
//
// The plugin's Android Java (version pinned in plugin.version, fetched into
// .cache/plugin by .ci/install-deps), CapacitorUpdaterPlugin and every other
// class of it, is compiled against Debian's OkHttp 3.13, Okio and Android's
// org.json, with thin stand-ins for the Capacitor bridge and the Android,
// AndroidX and Play classes it touches (android/). Debian 12's javac is 17:
// the one Java 21 form in the plugin, DelayUpdateUtils' qualified enum case
// labels, is written bare in a build copy (same meaning); nothing else is
// changed. The driver (driver/) is the host app: it loads the plugin on a
// bridge with a capacitor.config.json, calls its methods as the app's JS
// does (notifyAppReady, triggerUpdateCheck, which runs the plugin's own
// backgroundDownload) and the CapgoUpdater it made, one JSON command per
// line, and reports every HTTP exchange, listener event and delivered stat.
// The tests start a real `capstan serve` with its embedded JetStream and a
// throwaway ClickHouse, seed it through the admin API and assert on what
// the plugin did and what was stored.
//
// Run with `go test ./conformance/` after `bash .ci/install-deps`; one
// scenario with e.g. `-run 'TestPlugin/defects/D3'`. Set
// CONFORMANCE_CAPSTAN_BIN to test another capstan build. Skipped with -short.
package conformance

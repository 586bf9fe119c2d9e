// Package conformance runs the real capacitor-updater plugin against Capstan.
//
// The plugin's Android Java (version pinned in plugin.version, fetched into
// .cache/plugin by .ci/install-deps) is compiled unmodified against Debian's
// OkHttp 3.13, Okio and Android's org.json, with thin stand-ins for the
// Android and AndroidX classes it touches (android/). The driver
// (driver/) makes the calls CapacitorUpdaterPlugin makes on CapgoUpdater,
// one JSON command per line, and reports every HTTP exchange, listener
// event and delivered stat. The tests start a real `capstan serve` with
// its embedded JetStream and a throwaway ClickHouse, seed it through the
// admin API and assert on what the plugin did and what was stored.
//
// Run with `go test ./conformance/` after `bash .ci/install-deps`; one
// scenario with e.g. `-run 'TestPlugin/defects/D3'`. Set
// CONFORMANCE_CAPSTAN_BIN to test another capstan build. Skipped with -short.
package conformance

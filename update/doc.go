// Package update answers the device-facing update check and channel calls
// of the capacitor-updater plugin from an in-memory release snapshot.
//
// Decide is the pure update decision (PROTOCOL.md §2) and ResolveChannel the
// pure channel resolution shared with stats ingestion; Handler mounts
// /updates, /updates/manifest_size and /channel_self on a chi router;
// BundleHandler and FileHandler serve bundle zips and delta bundle files.
package update

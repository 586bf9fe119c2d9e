-- Latest known state per device, from actions that say what the device runs
-- (no failures, no download progress of another bundle).
CREATE TABLE IF NOT EXISTS {{.DB}}.capstan_devices{{.Local}}{{.On}} (
    app_id {{.LC}},
    device_id String,
    platform {{.LC}},
    version_name {{.LC}},
    version_build {{.LC}},
    plugin_version {{.LC}},
    version_os {{.LC}},
    channel {{.LC}},
    custom_id String,
    is_prod UInt8,
    is_emulator UInt8,
    last_seen {{.Time}}
) ENGINE = {{.Engine "ReplacingMergeTree" "capstan_devices" "last_seen"}}
ORDER BY (app_id, device_id)
{{- .TTL "last_seen"}};
{{.Distributed "capstan_devices" .EventsShardingKey}}

CREATE MATERIALIZED VIEW IF NOT EXISTS {{.DB}}.capstan_devices_mv{{.On}}
TO {{.DB}}.capstan_devices{{.Local}} AS
SELECT
    app_id,
    device_id,
    platform,
    version_name,
    version_build,
    plugin_version,
    version_os,
    channel,
    custom_id,
    is_prod,
    is_emulator,
    received_at AS last_seen
FROM {{.DB}}.capstan_events{{.Local}}
WHERE {{.Running}};

-- Raw events. ReplacingMergeTree on (app_id, action, event_id): a redelivered
-- or re-inserted event collapses into one row when parts merge; counted
-- tables (the rollup) are exact even before that. A cluster's table gets
-- 0005's columns here: 18.16 can crash a replica's distributed-DDL worker
-- when both replicas of a shard run one ALTER ON CLUSTER, so the cluster
-- schema is made without ALTER (cluster mode came after 0005).
CREATE TABLE IF NOT EXISTS {{.DB}}.capstan_events{{.Local}}{{.On}} (
    event_id String,
    received_at {{.Time}},
    client_time {{.Time}},
    app_id {{.LC}},
    device_id String,
    platform {{.LC}},
    action {{.LC}},
    version_name {{.LC}},
    file_name String,
    old_version_name {{.LC}},
    version_build {{.LC}},
    version_code {{.LC}},
    version_os {{.LC}},
    plugin_version {{.LC}},
    custom_id String,
    channel {{.LC}},
    install_source {{.LC}},
    key_id String,
    is_emulator UInt8,
    is_prod UInt8,
{{- if .Cluster}}
    reported_version_name String DEFAULT '',
    ignored UInt8 DEFAULT 0,
{{- end}}
{{- if .Modern}}
    metadata Map(String, String)
{{- else}}
    metadata_keys Array(String),
    metadata_values Array(String)
{{- end}}
) ENGINE = {{.Engine "ReplacingMergeTree" "capstan_events"}}
PARTITION BY toYYYYMMDD(received_at)
ORDER BY (app_id, action, event_id)
{{- .TTL "received_at"}};
{{.Distributed "capstan_events" .EventsShardingKey}}

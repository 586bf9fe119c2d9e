-- What the device sent as version_name when the event names another
-- failing bundle, and the flag of events kept but never counted as
-- failures (download_fail of plugins before 7.17.0 / 6.14.25). A
-- cluster's table has them from 0001.
{{- if not .Cluster}}
ALTER TABLE {{.DB}}.capstan_events{{.Local}}{{.On}} {{.AddColumn}} reported_version_name String DEFAULT '' AFTER is_prod;

ALTER TABLE {{.DB}}.capstan_events{{.Local}}{{.On}} {{.AddColumn}} ignored UInt8 DEFAULT 0 AFTER reported_version_name;
{{- end}}

-- Per-minute rollup that can count production, non-emulator devices only
-- and leave ignored events out of failures. events holds the set of event
-- ids, so re-inserts and the backfill below count once.
CREATE TABLE IF NOT EXISTS {{.DB}}.capstan_rollup_minute{{.Local}}{{.On}} (
    minute {{.Minute}},
    app_id {{.LC}},
    channel {{.LC}},
    version_name {{.LC}},
    platform {{.LC}},
    action {{.LC}},
    is_prod UInt8,
    is_emulator UInt8,
    ignored UInt8,
    events AggregateFunction(uniqExact, String),
    devices AggregateFunction(uniq, String)
) ENGINE = {{.Engine "AggregatingMergeTree" "capstan_rollup_minute"}}
PARTITION BY toYYYYMMDD(minute)
ORDER BY (app_id, minute, channel, version_name, platform, action, is_prod, is_emulator, ignored)
{{- .TTL "minute"}};
{{.Distributed "capstan_rollup_minute" "rand()"}}

CREATE MATERIALIZED VIEW IF NOT EXISTS {{.DB}}.capstan_rollup_minute_mv{{.On}}
TO {{.DB}}.capstan_rollup_minute{{.Local}} AS
SELECT
    toStartOfMinute(toDateTime(received_at)) AS minute,
    app_id,
    channel,
    version_name,
    platform,
    action,
    is_prod,
    is_emulator,
    ignored,
    uniqExactState(event_id) AS events,
    uniqState(device_id) AS devices
FROM {{.DB}}.capstan_events{{.Local}}
GROUP BY minute, app_id, channel, version_name, platform, action, is_prod, is_emulator, ignored;

-- Events stored before this migration. Safe to repeat, and overlapping
-- with the view is harmless: both are sets of event ids and device ids.
INSERT INTO {{.DB}}.capstan_rollup_minute
SELECT
    toStartOfMinute(toDateTime(received_at)) AS minute,
    app_id,
    channel,
    version_name,
    platform,
    action,
    is_prod,
    is_emulator,
    ignored,
    uniqExactState(event_id) AS events,
    uniqState(device_id) AS devices
FROM {{.DB}}.capstan_events
GROUP BY minute, app_id, channel, version_name, platform, action, is_prod, is_emulator, ignored;

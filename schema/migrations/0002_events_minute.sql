-- Per-minute rollup. events holds the set of event ids, so the same event
-- inserted twice (consumer retry, JetStream redelivery) counts once.
CREATE TABLE IF NOT EXISTS {{.DB}}.capstan_events_minute{{.Local}}{{.On}} (
    minute {{.Minute}},
    app_id {{.LC}},
    channel {{.LC}},
    version_name {{.LC}},
    platform {{.LC}},
    action {{.LC}},
    events AggregateFunction(uniqExact, String),
    devices AggregateFunction(uniq, String)
) ENGINE = {{.Engine "AggregatingMergeTree" "capstan_events_minute"}}
PARTITION BY toYYYYMMDD(minute)
ORDER BY (app_id, minute, channel, version_name, platform, action)
{{- .TTL "minute"}};
{{.Distributed "capstan_events_minute" "rand()"}}

CREATE MATERIALIZED VIEW IF NOT EXISTS {{.DB}}.capstan_events_minute_mv{{.On}}
TO {{.DB}}.capstan_events_minute{{.Local}} AS
SELECT
    toStartOfMinute(toDateTime(received_at)) AS minute,
    app_id,
    channel,
    version_name,
    platform,
    action,
    uniqExactState(event_id) AS events,
    uniqState(device_id) AS devices
FROM {{.DB}}.capstan_events{{.Local}}
GROUP BY minute, app_id, channel, version_name, platform, action;

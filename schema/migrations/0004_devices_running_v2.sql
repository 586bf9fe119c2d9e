-- The devices view again, with today's RunningCondition: the refusals
-- session_key_required and checksum_required became failure signals and
-- no longer say which bundle a device runs. Dropping and creating again
-- is safe to repeat.
DROP TABLE IF EXISTS {{.DB}}.capstan_devices_mv{{.On}};

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
WHERE {{.RunningNow}};

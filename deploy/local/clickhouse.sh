#!/usr/bin/env bash
# Starts or stops a single-node ClickHouse for local development
# (`make run`), installing Debian's package when it is missing.
# Usage: clickhouse.sh start|stop|status DIR   (ports: CH_TCP_PORT=9000, CH_HTTP_PORT=8123)
set -euo pipefail
cmd=${1:?usage: clickhouse.sh start|stop|status DIR}
dir=$(mkdir -p "${2:?data dir}" && cd "$2" && pwd)
tcp=${CH_TCP_PORT:-9000}
http=${CH_HTTP_PORT:-8123}
pidfile=$dir/clickhouse.pid

server_bin() {
  if command -v clickhouse-server >/dev/null 2>&1; then command -v clickhouse-server
  elif [ -x /usr/sbin/clickhouse-server ]; then echo /usr/sbin/clickhouse-server
  elif command -v clickhouse >/dev/null 2>&1; then echo "$(command -v clickhouse) server"
  fi
}

answering() { (exec 3<>"/dev/tcp/127.0.0.1/$http") 2>/dev/null; }

case $cmd in
start)
  if answering; then echo "clickhouse: already answering on 127.0.0.1:$http"; exit 0; fi
  if [ -z "$(server_bin)" ]; then
    echo "clickhouse: installing Debian's clickhouse-server package"
    SUDO=; [ "$(id -u)" -ne 0 ] && SUDO=sudo
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends clickhouse-server >/dev/null
    $SUDO service clickhouse-server stop >/dev/null 2>&1 || true
  fi
  mkdir -p "$dir"/{data,tmp,log,user_files,format_schemas}
  cat >"$dir/config.xml" <<XML
<yandex>
  <logger><level>warning</level><log>$dir/log/server.log</log><errorlog>$dir/log/error.log</errorlog><size>50M</size><count>2</count></logger>
  <listen_host>127.0.0.1</listen_host>
  <tcp_port>$tcp</tcp_port>
  <http_port>$http</http_port>
  <path>$dir/data/</path>
  <tmp_path>$dir/tmp/</tmp_path>
  <user_files_path>$dir/user_files/</user_files_path>
  <format_schema_path>$dir/format_schemas/</format_schema_path>
  <users_config>$dir/users.xml</users_config>
  <default_profile>default</default_profile>
  <default_database>default</default_database>
  <timezone>UTC</timezone>
  <mark_cache_size>268435456</mark_cache_size>
  <max_concurrent_queries>100</max_concurrent_queries>
</yandex>
XML
  cat >"$dir/users.xml" <<XML
<yandex>
  <profiles><default><max_memory_usage>4000000000</max_memory_usage></default><readonly><readonly>1</readonly></readonly></profiles>
  <users><default><password></password><networks><ip>127.0.0.1</ip><ip>::1</ip></networks><profile>default</profile><quota>default</quota></default></users>
  <quotas><default><interval><duration>3600</duration><queries>0</queries><errors>0</errors><result_rows>0</result_rows><read_rows>0</read_rows><execution_time>0</execution_time></interval></default></quotas>
</yandex>
XML
  # shellcheck disable=SC2046
  nohup $(server_bin) --config-file="$dir/config.xml" >"$dir/log/stdout.log" 2>&1 &
  echo $! >"$pidfile"
  for _ in $(seq 1 100); do
    if answering; then echo "clickhouse: started (native 127.0.0.1:$tcp, http 127.0.0.1:$http, data $dir)"; exit 0; fi
    sleep 0.2
  done
  echo "clickhouse: did not start; see $dir/log/" >&2; tail -n 20 "$dir/log/stdout.log" "$dir/log/error.log" >&2 || true; exit 1
  ;;
stop)
  if [ -f "$pidfile" ] && kill "$(cat "$pidfile")" 2>/dev/null; then
    for _ in $(seq 1 100); do kill -0 "$(cat "$pidfile")" 2>/dev/null || break; sleep 0.1; done
    rm -f "$pidfile"; echo "clickhouse: stopped"
  else rm -f "$pidfile"; echo "clickhouse: not running"; fi
  ;;
status)
  if answering; then echo "clickhouse: answering on 127.0.0.1:$http"; else echo "clickhouse: not answering"; exit 1; fi
  ;;
*) echo "usage: clickhouse.sh start|stop|status DIR" >&2; exit 2 ;;
esac

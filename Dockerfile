# syntax=docker/dockerfile:1
# Capstan's one binary in a small non-root image. The same image runs
# `capstan serve` (fronts, the default command) and `capstan consume`.

# The web console (console/ui), built with npm from its lockfile into
# console/dist, which the binary embeds.
FROM node:20-bookworm-slim AS console
WORKDIR /src/console/ui
COPY console/ui/package.json console/ui/package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY console/ui/ ./
RUN npm run build

FROM golang:1.26-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
COPY --from=console /src/console/dist ./console/dist
# Static binary: no libc needed at run time.
RUN CGO_ENABLED=0 GOOS=linux go build -trimpath -ldflags "-s -w" -o /out/capstan ./cmd/capstan

# Alpine rather than distroless so health checks can use busybox wget.
FROM alpine:3.22
RUN apk add --no-cache ca-certificates tzdata \
 && addgroup -S -g 10001 capstan \
 && adduser -S -D -H -u 10001 -G capstan -h /data capstan \
 && mkdir -p /data && chown capstan:capstan /data
COPY --from=build /out/capstan /usr/local/bin/capstan
USER 10001:10001
WORKDIR /data
ENV CAPSTAN_DATA_DIR=/data \
    CAPSTAN_LISTEN=:8080 \
    CAPSTAN_METRICS_LISTEN=:9091
VOLUME ["/data"]
# 8080: `serve` device and admin HTTP, /healthz, /readyz; 9091: /metrics of
# `serve` and `consume` (keep it off the internet).
EXPOSE 8080 9091
HEALTHCHECK --interval=10s --timeout=3s --start-period=10s --retries=3 \
  CMD wget -q -O /dev/null http://127.0.0.1:8080/healthz || exit 1
ENTRYPOINT ["capstan"]
CMD ["serve"]

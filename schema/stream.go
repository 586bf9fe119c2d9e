package schema

// JetStream names shared by ingest (publisher) and consumer.
const (
	// EventsStream holds accepted stats events until ClickHouse has them.
	EventsStream = "CAPSTAN_EVENTS"
	// EventsSubjectPrefix is followed by one subject token per app
	// (see EventSubject).
	EventsSubjectPrefix = "capstan.events."
	EventsSubjects      = "capstan.events.>"

	// DeadLetterStream keeps messages the consumer could not decode.
	DeadLetterStream   = "CAPSTAN_EVENTS_DLQ"
	DeadLetterSubjects = "capstan.dlq.>"
	DeadLetterSubject  = "capstan.dlq.events"

	// ConsumerName is the durable pull consumer all consumer replicas share.
	ConsumerName = "clickhouse"
)

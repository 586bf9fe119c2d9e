package consumer

import (
	"errors"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
)

// errClass is what the consumer does after a failed insert.
type errClass int

const (
	// retryLater: the server, network or schema is not ready; the same
	// rows will succeed later. The default, so nothing is ever dropped
	// because of an error nobody anticipated.
	retryLater errClass = iota
	// rowsRejected: ClickHouse refused the data itself; some row of the
	// batch is bad and bisection finds it.
	rowsRejected
)

// dataErrorCodes are ClickHouse exception codes caused by the values
// inserted, not by the server's state.
var dataErrorCodes = map[int32]bool{
	6:   true, // CANNOT_PARSE_TEXT
	27:  true, // CANNOT_PARSE_INPUT_ASSERTION_FAILED
	36:  true, // BAD_ARGUMENTS
	38:  true, // CANNOT_PARSE_DATE
	41:  true, // CANNOT_PARSE_DATETIME
	53:  true, // TYPE_MISMATCH
	69:  true, // ARGUMENT_OUT_OF_BOUND
	70:  true, // CANNOT_CONVERT_TYPE
	72:  true, // CANNOT_PARSE_NUMBER
	117: true, // INCORRECT_DATA
	128: true, // TOO_LARGE_ARRAY_SIZE
	131: true, // TOO_LARGE_STRING_SIZE
	190: true, // SIZES_OF_ARRAYS_DOESNT_MATCH
	321: true, // VALUE_IS_OUT_OF_RANGE_OF_DATA_TYPE
	349: true, // CANNOT_INSERT_NULL_IN_ORDINARY_COLUMN
	407: true, // DECIMAL_OVERFLOW
}

// classify decides whether a failed insert is worth retrying as is.
// Connection errors, timeouts, overload (TOO_MANY_PARTS, memory limits,
// too many queries), missing tables and authentication problems all
// retry; only exceptions about the inserted values lead to bisection.
func classify(err error) errClass {
	var ex *clickhouse.Exception
	if errors.As(err, &ex) && dataErrorCodes[ex.Code] {
		return rowsRejected
	}
	return retryLater
}

// backoff returns the wait before retry number attempt (0-based):
// initial doubled each time, capped at max.
func backoff(attempt int, initial, max time.Duration) time.Duration {
	d := initial
	for i := 0; i < attempt && d < max; i++ {
		d *= 2
	}
	if d > max {
		d = max
	}
	return d
}
